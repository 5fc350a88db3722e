package scim

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim/scimtest"
)

func TestClassOf(t *testing.T) {
	for code, want := range map[int]StatusClass{
		200: StatusSuccess, 201: StatusSuccess, 204: StatusSuccess,
		400: StatusRequest, 403: StatusRequest, 404: StatusRequest, 409: StatusRequest,
		401: StatusUnauthorized, 429: StatusThrottled,
		500: StatusServer, 502: StatusServer, 503: StatusServer, 504: StatusServer,
		501: StatusRequest,
	} {
		if got := ClassOf(code); got != want {
			t.Errorf("ClassOf(%d) = %d, want %d", code, got, want)
		}
	}
	if !StatusThrottled.Transient() || !StatusServer.Transient() || !StatusUnauthorized.Transient() ||
		StatusRequest.Transient() || StatusSuccess.Transient() {
		t.Error("Transient disagrees with the classes")
	}
	if StatusOf(fmt.Errorf("wrapped: %w", &APIError{Status: 503})) != 503 || StatusOf(errors.New("dial")) != 0 {
		t.Error("StatusOf")
	}
}

// TestRetryPolicyFollowsClassOf: the client re-sends exactly the statuses ClassOf calls
// throttled or server errors (501 is not: AWS does not implement the operation).
func TestRetryPolicyFollowsClassOf(t *testing.T) {
	ctx := context.Background()
	for _, code := range []int{400, 403, 404, 429, 500, 501, 502, 503, 504} {
		f := newFixture(t, scimtest.Options{}, WithMaxRetries(1))
		ids := f.seedUsers(1)
		f.srv.FailNext(1, code)
		_, err := f.c.GetUser(ctx, ids[0])
		retried := f.srv.TotalRequests() == 2
		c := ClassOf(code)
		if want := c == StatusThrottled || c == StatusServer; retried != want {
			t.Errorf("%d: retried %v, want %v", code, retried, want)
		}
		if retried && err != nil {
			t.Errorf("%d: the retry failed: %v", code, err)
		}
		if !retried && StatusOf(err) != code {
			t.Errorf("%d: error %v", code, err)
		}
	}
}

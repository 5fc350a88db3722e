// Command echo is a tiny Lambda function for testing the harness's Runtime API: it echoes, fails,
// panics, exits, sleeps and logs on request.
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

type request struct {
	Echo   string `json:"echo"`
	Error  string `json:"error"`
	Panic  bool   `json:"panic"`
	Exit   int    `json:"exit"`
	Sleep  string `json:"sleep"` // honours the deadline
	Block  string `json:"block"` // ignores it
	Log    string `json:"log"`
	Stderr string `json:"stderr"`
}

type response struct {
	Echo        string            `json:"echo"`
	RequestID   string            `json:"requestId"`
	FunctionARN string            `json:"functionArn"`
	DeadlineMs  int64             `json:"deadlineMs"`
	Env         map[string]string `json:"env"`
	PID         int               `json:"pid"`
}

var envNames = []string{
	"AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
	"_HANDLER", "LAMBDA_TASK_ROOT", "AWS_REGION", "HOME", "ECHO_EXTRA", "_X_AMZN_TRACE_ID",
}

func handle(ctx context.Context, req request) (response, error) {
	if req.Log != "" {
		fmt.Println(req.Log)
	}
	if req.Stderr != "" {
		fmt.Fprintln(os.Stderr, req.Stderr)
	}
	if req.Sleep != "" {
		d, err := time.ParseDuration(req.Sleep)
		if err != nil {
			return response{}, err
		}
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return response{}, ctx.Err()
		}
	}
	if req.Block != "" {
		d, err := time.ParseDuration(req.Block)
		if err != nil {
			return response{}, err
		}
		time.Sleep(d)
	}
	switch {
	case req.Error != "":
		return response{}, errors.New(req.Error)
	case req.Panic:
		panic("echo asked to panic")
	case req.Exit != 0:
		os.Exit(req.Exit)
	}
	lc, _ := lambdacontext.FromContext(ctx)
	dl, _ := ctx.Deadline()
	resp := response{Echo: req.Echo, DeadlineMs: dl.UnixMilli(), Env: map[string]string{}, PID: os.Getpid()}
	if lc != nil {
		resp.RequestID, resp.FunctionARN = lc.AwsRequestID, lc.InvokedFunctionArn
	}
	for _, n := range envNames {
		resp.Env[n] = os.Getenv(n)
	}
	return resp, nil
}

func main() {
	if msg := os.Getenv("ECHO_INIT_FAIL"); msg != "" {
		// aws-lambda-go never posts init errors itself; other runtimes do.
		body := fmt.Sprintf(`{"errorType":"Runtime.InitError","errorMessage":%q}`, msg)
		resp, err := http.Post("http://"+os.Getenv("AWS_LAMBDA_RUNTIME_API")+"/2018-06-01/runtime/init/error", "application/json", bytes.NewBufferString(body))
		if err == nil {
			resp.Body.Close()
		}
		os.Exit(1)
	}
	if d, err := time.ParseDuration(os.Getenv("ECHO_INIT_SLEEP")); err == nil {
		time.Sleep(d)
	}
	if os.Getenv("ECHO_SIGTERM") != "" {
		lambda.StartWithOptions(handle, lambda.WithEnableSIGTERM())
		return
	}
	lambda.Start(handle)
}

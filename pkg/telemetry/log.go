// Package telemetry writes what operators read: JSON log lines (log/slog) carrying the Lambda
// request id, audit records of applied changes, and CloudWatch metrics in Embedded Metric Format,
// which CloudWatch extracts from the log stream with no API call on the hot path.
package telemetry

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

// NewLogger returns a JSON logger writing to w (stdout in Lambda) at level and above.
func NewLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}

// WithLambda returns l with the invocation's aws_request_id attached, so every line of one
// invocation can be found together. Outside Lambda (no lambdacontext) it returns l unchanged.
func WithLambda(ctx context.Context, l *slog.Logger) *slog.Logger {
	lc, ok := lambdacontext.FromContext(ctx)
	if !ok || lc.AwsRequestID == "" {
		return l
	}
	return l.With(slog.String("aws_request_id", lc.AwsRequestID))
}

// AuditRecord is one applied (or deliberately skipped) change. Time is when it was applied;
// zero means now. Result is e.g. "applied", "noop", "failed", "dry_run".
type AuditRecord struct {
	Time          time.Time
	EventUUID     string
	Group         string
	GroupID       string
	User          string
	UserID        string
	Op            string
	Result        string
	ScimRequestID string
	Reason        string
}

// Audit writes r as one info line with msg "audit". The line's own "time" is r.Time, so the
// record needs no second timestamp field. Empty optional fields are left out.
func Audit(l *slog.Logger, r AuditRecord) {
	ctx := context.Background()
	h := l.Handler()
	if !h.Enabled(ctx, slog.LevelInfo) {
		return
	}
	t := r.Time
	if t.IsZero() {
		t = time.Now()
	}
	rec := slog.NewRecord(t.UTC(), slog.LevelInfo, "audit", 0)
	rec.AddAttrs(
		slog.String("event_uuid", r.EventUUID),
		slog.String("op", r.Op),
		slog.String("result", r.Result),
		slog.String("group", r.Group),
		slog.String("group_id", r.GroupID),
	)
	// Group-level ops (rename, delete) have no user; user deactivation has no group, but the
	// group keys stay so every audit line has the same core shape.
	for _, a := range [...]slog.Attr{
		slog.String("user", r.User),
		slog.String("user_id", r.UserID),
		slog.String("scim_request_id", r.ScimRequestID),
		slog.String("reason", r.Reason),
	} {
		if a.Value.String() != "" {
			rec.AddAttrs(a)
		}
	}
	// A failed log write has nowhere better to go.
	_ = h.Handle(ctx, rec)
}

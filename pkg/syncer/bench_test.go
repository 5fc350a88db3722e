package syncer

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/ledger"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/membership"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/queue"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim/scimtest"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scimapply"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/telemetry"
)

// The benchmarks measure SCIM requests per change (the figure AWS's rate limit cares about) and
// wall time per burst against the emulator with a fixed latency per request. See
// docs/BENCHMARKS.md ("Sync worker") for the figures and how they were produced.

const (
	benchLatency   = 20 * time.Millisecond
	benchDirectory = 2000 // SCIM users in the emulator
	esmBatch       = 10   // Lambda's SQS FIFO event source mapping delivers at most 10 messages
)

var naiveLarge = flag.Bool("sync.naive-large", false, "also run the naive baseline on 1000-change bursts (about a minute per run)")

type benchEnv struct {
	srv    *scimtest.Server
	client *scim.Client
	close  func()
}

// newBenchEnv starts an emulator with benchDirectory users (login user<i>@example.com, externalId
// 00u<i>) and, when groups > 0 and existing, the groups AWS_G<j>.
func newBenchEnv(b *testing.B, groups int, existing bool) *benchEnv {
	b.Helper()
	srv := scimtest.New(scimtest.Options{Seed: 1})
	for i := range benchDirectory {
		srv.AddUser(fmt.Sprintf("user%05d@example.com", i), fmt.Sprintf("00u%05d", i))
	}
	if existing {
		for j := range groups {
			srv.AddGroup(fmt.Sprintf("AWS_G%02d", j), fmt.Sprintf("00g%02d", j))
		}
	}
	hs := httptest.NewServer(srv.Handler())
	client, err := scim.New(hs.URL+srv.BasePath(), func(context.Context, bool) (string, error) { return scimtest.DefaultToken, nil })
	if err != nil {
		b.Fatal(err)
	}
	return &benchEnv{srv: srv, client: client, close: hs.Close}
}

// burst returns n add changes spread round-robin over groups, distinct users, published after base.
func burst(n, groups int, base time.Time, kind membership.Kind) []membership.Change {
	out := make([]membership.Change, n)
	for i := range n {
		g := i % groups
		out[i] = membership.Change{
			EventUUID: fmt.Sprintf("ev-%d-%05d", base.UnixNano(), i),
			Published: base.Add(time.Duration(i) * time.Millisecond),
			Kind:      kind,
			UserID:    fmt.Sprintf("00u%05d", i),
			Login:     fmt.Sprintf("user%05d@example.com", i),
			GroupID:   fmt.Sprintf("00g%02d", g),
			GroupName: fmt.Sprintf("AWS_G%02d", g),
		}
	}
	return out
}

// deliveries splits changes into SQS events of at most size messages. A FIFO queue returns "as
// many messages with the same message group id as possible" per receive, so the queue is read
// group by group, each group in its order.
func deliveries(b *testing.B, changes []membership.Change, size int) []events.SQSEvent {
	changes = slices.Clone(changes)
	slices.SortStableFunc(changes, func(x, y membership.Change) int { return strings.Compare(x.GroupID, y.GroupID) })
	var out []events.SQSEvent
	for start := 0; start < len(changes); start += size {
		var ev events.SQSEvent
		for i, c := range changes[start:min(start+size, len(changes))] {
			e, err := queue.Encode(c)
			if err != nil {
				b.Fatal(err)
			}
			ev.Records = append(ev.Records, events.SQSMessage{MessageId: fmt.Sprint(start + i), Body: e.Body,
				Attributes: map[string]string{"MessageGroupId": e.GroupID, "MessageDeduplicationId": e.DedupID}})
		}
		out = append(out, ev)
	}
	return out
}

// packedDeliveries is the production shape with the hook's v2 messages: Okta delivers the burst
// in deliveries of oktaSize events (in burst order, so a delivery spans the groups round-robin),
// the hook packs each delivery's changes of a group into one message, and the event source
// mapping hands the worker 10 messages per invocation, read group by group.
func packedDeliveries(b *testing.B, changes []membership.Change, oktaSize int) []events.SQSEvent {
	var entries []queue.Entry
	for start := 0; start < len(changes); start += oktaSize {
		es, err := queue.EncodeBatch(changes[start:min(start+oktaSize, len(changes))])
		if err != nil {
			b.Fatal(err)
		}
		entries = append(entries, es...)
	}
	slices.SortStableFunc(entries, func(x, y queue.Entry) int { return strings.Compare(x.GroupID, y.GroupID) })
	var out []events.SQSEvent
	for start := 0; start < len(entries); start += esmBatch {
		var ev events.SQSEvent
		for i, e := range entries[start:min(start+esmBatch, len(entries))] {
			ev.Records = append(ev.Records, events.SQSMessage{MessageId: fmt.Sprint(start + i), Body: e.Body,
				Attributes: map[string]string{"MessageGroupId": e.GroupID, "MessageDeduplicationId": e.DedupID}})
		}
		out = append(out, ev)
	}
	return out
}

// ddbCount wraps a ledger and counts the DynamoDB calls ledger.Table would make for the same
// calls: one BatchGetItem per 100 distinct keys read, one PutItem per record written (puts,
// claims, finalizes: conditional writes cannot be batched, BatchWriteItem takes no condition).
type ddbCount struct {
	ledger.Ledger
	mu           sync.Mutex
	gets, writes int
}

func (d *ddbCount) Get(ctx context.Context, keys []ledger.Key) (map[ledger.Key]membership.Mark, error) {
	uniq := map[ledger.Key]bool{}
	for _, k := range keys {
		uniq[k] = true
	}
	d.mu.Lock()
	d.gets += (len(uniq) + 99) / 100
	d.mu.Unlock()
	return d.Ledger.Get(ctx, keys)
}

func (d *ddbCount) wrote(n int) {
	d.mu.Lock()
	d.writes += n
	d.mu.Unlock()
}

func (d *ddbCount) Put(ctx context.Context, r []ledger.Record) error {
	d.wrote(len(r))
	return d.Ledger.Put(ctx, r)
}

func (d *ddbCount) PutReport(ctx context.Context, r []ledger.Record) ([]bool, error) {
	d.wrote(len(r))
	return d.Ledger.PutReport(ctx, r)
}

type claimer interface {
	Claim(context.Context, []ledger.Record) ([]bool, error)
	Finalize(context.Context, []ledger.Record) ([]bool, error)
}

func (d *ddbCount) Claim(ctx context.Context, r []ledger.Record) ([]bool, error) {
	d.wrote(len(r))
	return any(d.Ledger).(claimer).Claim(ctx, r)
}

func (d *ddbCount) Finalize(ctx context.Context, r []ledger.Record) ([]bool, error) {
	d.wrote(len(r))
	return any(d.Ledger).(claimer).Finalize(ctx, r)
}

func benchHandler(client *scim.Client, dir *scimapply.Directory, led ledger.Ledger) *Handler {
	return NewHandler(Config{
		SCIM: client, Dir: dir, Ledger: led, CreateGroups: true,
		Log: telemetry.NewLogger(io.Discard, slog.LevelInfo), MetricsOut: io.Discard, Namespace: "Bench",
	})
}

// BenchmarkSyncBurst applies bursts of adds through the real handler.
//
//   - delivery=esm10: as Lambda delivers a FIFO queue, 10 messages per invocation, one change per
//     message (v1 messages, the hook before packing);
//   - delivery=esm10-packedN: the same event source mapping, with the hook's v2 messages for
//     Okta deliveries of N events (Okta's amalgamation size is undocumented: N=10 and N=100);
//   - delivery=one: the whole burst in one invocation (what the worker's batching can do when
//     the messages arrive together, the bound for a larger delivery unit).
//   - cache=cold: a new container (empty Directory) and a group missing in SCIM;
//     cache=warm: the container already resolved these users and the group.
func BenchmarkSyncBurst(b *testing.B) {
	type tc struct {
		changes, groups int
		delivery        string
	}
	var cases []tc
	for _, n := range []int{1, 10, 100, 250, 1000} {
		for _, g := range []int{1, 10} {
			if g > n || (n == 250 && g != 1) {
				continue
			}
			cases = append(cases, tc{n, g, "esm10"})
			if n >= 100 {
				cases = append(cases, tc{n, g, "esm10-packed10"}, tc{n, g, "esm10-packed100"})
			}
			if n == 250 || n == 1000 {
				cases = append(cases, tc{n, g, "one"})
			}
		}
	}
	for _, c := range cases {
		for _, cache := range []string{"cold", "warm"} {
			name := fmt.Sprintf("changes=%d/groups=%d/delivery=%s/cache=%s", c.changes, c.groups, c.delivery, cache)
			b.Run(name, func(b *testing.B) {
				size := esmBatch
				if c.delivery == "one" {
					size = c.changes
				}
				ctx := context.Background()
				var requests, invocations, ddbGets, ddbWrites int
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					env := newBenchEnv(b, c.groups, cache == "warm")
					dir := scimapply.NewDirectory(env.client)
					changes := burst(c.changes, c.groups, time.Date(2024, 5, 1, 12, 0, i, 0, time.UTC), membership.KindAdd)
					if cache == "warm" {
						// What an earlier burst taught this container: the users and the groups.
						refs := make([]scimapply.UserRef, len(changes))
						for k, ch := range changes {
							refs[k] = scimapply.UserRef{ID: ch.UserID, Login: ch.Login}
						}
						dir.ResolveUsers(ctx, refs)
						for j := range c.groups {
							if _, _, err := dir.Group(ctx, scimapply.GroupRef{ID: fmt.Sprintf("00g%02d", j), Name: fmt.Sprintf("AWS_G%02d", j)}, false); err != nil {
								b.Fatal(err)
							}
						}
					}
					led := &ddbCount{Ledger: ledger.NewMemory()}
					h := benchHandler(env.client, dir, led)
					var evs []events.SQSEvent
					switch c.delivery {
					case "esm10-packed10":
						evs = packedDeliveries(b, changes, 10)
					case "esm10-packed100":
						evs = packedDeliveries(b, changes, 100)
					default:
						evs = deliveries(b, changes, size)
					}
					env.srv.ResetCounters()
					env.srv.SetFaults(scimtest.Faults{Latency: benchLatency})
					b.StartTimer()
					for _, ev := range evs {
						resp, _ := h.Handle(ctx, ev)
						if len(resp.BatchItemFailures) > 0 {
							b.Fatalf("%d failures", len(resp.BatchItemFailures))
						}
					}
					b.StopTimer()
					requests += env.srv.TotalRequests()
					invocations += len(evs)
					ddbGets += led.gets
					ddbWrites += led.writes
					if got := memberCount(env.srv); got != c.changes {
						b.Fatalf("%d memberships, want %d", got, c.changes)
					}
					env.close()
					b.StartTimer()
				}
				b.ReportMetric(float64(requests)/float64(b.N*c.changes), "scim-req/change")
				b.ReportMetric(float64(requests)/float64(b.N), "scim-req/burst")
				b.ReportMetric(float64(invocations)/float64(b.N), "invocations/burst")
				b.ReportMetric(float64(ddbGets+ddbWrites)/float64(b.N*c.changes), "ddb-calls/change")
				b.ReportMetric(float64(ddbWrites)/float64(b.N*c.changes), "ddb-writes/change")
			})
		}
	}
}

func memberCount(srv *scimtest.Server) int {
	n := 0
	for _, m := range srv.Snapshot() {
		n += len(m)
	}
	return n
}

// BenchmarkNaiveBurst is the original Python connector's strategy, kept here only as a baseline:
// for every event, look the user up by userName, look the group up by displayName (creating it
// when missing), and send one PATCH with one value.
func BenchmarkNaiveBurst(b *testing.B) {
	for _, n := range []int{1, 10, 100, 250, 1000} {
		for _, g := range []int{1, 10} {
			if g > n || (n == 250 && g != 1) || (n == 1000 && !*naiveLarge) {
				continue
			}
			b.Run(fmt.Sprintf("changes=%d/groups=%d", n, g), func(b *testing.B) {
				ctx := context.Background()
				requests := 0
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					env := newBenchEnv(b, g, false)
					changes := burst(n, g, time.Date(2024, 5, 1, 12, 0, i, 0, time.UTC), membership.KindAdd)
					env.srv.SetFaults(scimtest.Faults{Latency: benchLatency})
					b.StartTimer()
					for _, c := range changes {
						if err := naiveApply(ctx, env.client, c); err != nil {
							b.Fatal(err)
						}
					}
					b.StopTimer()
					requests += env.srv.TotalRequests()
					env.close()
					b.StartTimer()
				}
				b.ReportMetric(float64(requests)/float64(b.N*n), "scim-req/change")
				b.ReportMetric(float64(requests)/float64(b.N), "scim-req/burst")
			})
		}
	}
}

func naiveApply(ctx context.Context, c *scim.Client, ch membership.Change) error {
	u, err := c.FindUserByUserName(ctx, ch.Login)
	if err != nil {
		return err
	}
	g, err := c.FindGroupByDisplayName(ctx, ch.GroupName)
	if errors.Is(err, scim.ErrNotFound) {
		g, err = c.CreateGroup(ctx, scim.Group{DisplayName: ch.GroupName, ExternalID: ch.GroupID}, nil)
	}
	if err != nil {
		return err
	}
	_, err = c.AddMembers(ctx, g.ID, []string{u.ID})
	return err
}

// BenchmarkResolveStrategy compares per-user lookups with one listing of the directory, for a
// cold container, at several directory sizes and numbers of unknown users; strategy=adaptive is
// what Directory chooses by itself.
func BenchmarkResolveStrategy(b *testing.B) {
	for _, size := range []int{500, 5000} {
		for _, unknown := range []int{5, 50, 200} {
			for _, strategy := range []string{"lookup", "list", "adaptive"} {
				b.Run(fmt.Sprintf("directory=%d/unknown=%d/strategy=%s", size, unknown, strategy), func(b *testing.B) {
					srv := scimtest.New(scimtest.Options{Seed: 1})
					for i := range size {
						srv.AddUser(fmt.Sprintf("user%05d@example.com", i), fmt.Sprintf("00u%05d", i))
					}
					hs := httptest.NewServer(srv.Handler())
					defer hs.Close()
					client, err := scim.New(hs.URL+srv.BasePath(), func(context.Context, bool) (string, error) { return scimtest.DefaultToken, nil })
					if err != nil {
						b.Fatal(err)
					}
					srv.SetFaults(scimtest.Faults{Latency: benchLatency})
					refs := make([]scimapply.UserRef, unknown)
					for i := range refs {
						k := i * (size / unknown) // spread over the directory
						refs[i] = scimapply.UserRef{ID: fmt.Sprintf("00u%05d", k), Login: fmt.Sprintf("user%05d@example.com", k)}
					}
					var opts []scimapply.DirectoryOption
					switch strategy {
					case "lookup":
						opts = append(opts, scimapply.WithColdListing(1<<30, 0))
					case "list":
						opts = append(opts, scimapply.WithColdListing(1, 1<<30))
					}
					requests := 0
					var used scimapply.Strategy
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						res := scimapply.NewDirectory(client, opts...).ResolveUsers(context.Background(), refs)
						if len(res.Users) != unknown {
							b.Fatalf("resolved %d of %d", len(res.Users), unknown)
						}
						requests += res.Requests
						used = res.Strategy
					}
					b.ReportMetric(float64(requests)/float64(b.N), "scim-req")
					if strategy == "adaptive" {
						b.Logf("adaptive chose %s", used)
					}
				})
			}
		}
	}
}

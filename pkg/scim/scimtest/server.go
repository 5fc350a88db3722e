package scimtest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Limits AWS documents for its SCIM endpoint.
const (
	// MaxPageSize is the largest count AWS accepts on GET /Users and GET /Groups.
	MaxPageSize = 100
	// MaxMemberValues is the most member values AWS accepts in one PATCH /Groups/{id}
	// ("100 membership changes") or in the members of one POST /Groups.
	MaxMemberValues = 100
)

// DefaultBasePath is the path prefix when Options.BasePath is empty. AWS's is
// /<tenant id>/scim/v2; tests that care set a tenant-looking prefix themselves.
const DefaultBasePath = "/scim/v2"

// DefaultToken is the bearer token accepted when Options.Token is empty.
const DefaultToken = "scimtest-token"

// EmptyRemoveMode selects what a PATCH remove on "members" without any value does.
type EmptyRemoveMode int

const (
	// EmptyRemoveEmptiesGroup is AWS's earlier behaviour and the default: the group loses every
	// member and the request succeeds. Tests should assert EmptyRemoves() == 0.
	EmptyRemoveEmptiesGroup EmptyRemoveMode = iota
	// EmptyRemoveRejected is AWS's documented behaviour today: 400 ValidationException.
	EmptyRemoveRejected
)

// Faults are the random faults the server injects into authenticated requests. The random
// draws come from the server's seeded generator, so a given request sequence fails the same way
// on every run.
type Faults struct {
	// ThrottleRate is the probability of a 429 ThrottlingException.
	ThrottleRate float64
	// RetryAfter is the Retry-After header value sent with injected 429s ("1", or an HTTP date);
	// empty sends none.
	RetryAfter string
	// ErrorRate is the probability of a 500 InternalServerException.
	ErrorRate float64
	// Latency is added before every response (the wait honours the request's context).
	Latency time.Duration
}

// Fault is one scripted failure, consumed by the first request it matches.
type Fault struct {
	// Status is the HTTP status to answer with (429, 500, 503, 400, ...).
	Status int
	// RetryAfter is sent as the Retry-After header when not empty.
	RetryAfter string
	// Route restricts the fault to one route key such as "PATCH /Groups/{id}"; empty matches any.
	Route string
}

// FaultFunc decides per request whether to fail it: return nil to let the request through.
// route is the route key ("GET /Users", "PATCH /Groups/{id}", ...).
type FaultFunc func(route string, r *http.Request) *Fault

// Options configure a Server. The zero value is usable.
type Options struct {
	// BasePath is the prefix of every SCIM route, e.g. "/abcd-1234/scim/v2". Requests outside it
	// get 401, as AWS answers a wrong tenant id.
	BasePath string
	// Token is the bearer token accepted; rotate it later with SetToken.
	Token string
	// Seed drives fault injection, generated ids and UnevenPages.
	Seed uint64
	// Faults are the initial random faults (SetFaults changes them).
	Faults Faults
	// EmptyRemove selects the behaviour of a remove on members without values.
	EmptyRemove EmptyRemoveMode
	// UnknownMemberStatus is the status for adding a user id that does not exist (AWS does not
	// document it); 0 means 400.
	UnknownMemberStatus int
	// UnevenPages makes cursor pages hold a seeded random number of items in [1, count], as AWS
	// warns "paginated calls may return less results than count".
	UnevenPages bool
	// Limits are the token buckets that throttle requests (AWSLimits for AWS's); the zero value
	// throttles nothing. SetLimits changes them.
	Limits Limits
	// GroupOrderSeed, when not 0, makes GET /Groups (listings and filters alike) answer in an
	// order drawn from it instead of creation order, the same for every request: AWS documents no
	// order for ListGroups, so a caller's decision must not depend on it (tests list one set of
	// groups under several seeds).
	GroupOrderSeed uint64
	// Now is the clock for meta timestamps, error timeStamps and the token buckets; nil means
	// time.Now.
	Now func() time.Time
}

type user struct {
	seq         uint64
	id          string
	userName    string
	externalID  string
	displayName string
	givenName   string
	familyName  string
	email       string
	active      bool
	created     time.Time
	modified    time.Time
	groups      map[string]struct{}
}

type group struct {
	seq         uint64
	id          string
	displayName string
	externalID  string
	members     map[string]struct{}
	created     time.Time
	modified    time.Time
	// sorted caches members in creation order for paging; nil after any membership change.
	sorted []*user
}

// Server is an in-memory SCIM 2.0 service that behaves like AWS IAM Identity Center's SCIM
// endpoint. It is an http.Handler; use it with httptest.NewServer or Start. All methods are
// safe for concurrent use.
type Server struct {
	basePath    string
	now         func() time.Time
	emptyRemove EmptyRemoveMode
	unknownCode int
	uneven      bool
	groupOrder0 uint64 // Options.GroupOrderSeed

	mu         sync.Mutex
	token      string
	expired    bool
	faults     Faults
	faultRand  *rand.Rand
	idRand     *rand.Rand
	storePfx   string
	script     []Fault
	faultFunc  FaultFunc
	holds      []*Held
	seq        uint64
	users      map[string]*user
	userOrder  []*user
	byUserName map[string]*user   // exact userName: uniqueness
	byUserFold map[string][]*user // lower-cased userName: the userName filter (see doc.go)
	groups     map[string]*group
	groupOrder []*group
	byGroupNm  map[string]*group

	requests       map[string]int
	total          int
	writes         int // requests other than GET: what a dry run must never send
	throttled      int
	serverErrors   int
	unauthorized   int
	maxPatchValues int
	emptyRemoves   int

	limits limiterState

	httpSrv  *http.Server
	listener net.Listener
	baseURL  string
}

// New returns a Server with no users and no groups.
func New(opts Options) *Server {
	base := strings.TrimRight(opts.BasePath, "/")
	if base == "" {
		base = DefaultBasePath
	}
	if !strings.HasPrefix(base, "/") {
		base = "/" + base
	}
	tok := opts.Token
	if tok == "" {
		tok = DefaultToken
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	code := opts.UnknownMemberStatus
	if code == 0 {
		code = http.StatusBadRequest
	}
	idRand := rand.New(rand.NewPCG(opts.Seed, 0x5c1a))
	return &Server{
		basePath:    base,
		now:         now,
		emptyRemove: opts.EmptyRemove,
		unknownCode: code,
		uneven:      opts.UnevenPages,
		groupOrder0: opts.GroupOrderSeed,
		token:       tok,
		faults:      opts.Faults,
		faultRand:   rand.New(rand.NewPCG(opts.Seed, 0xfa17)),
		idRand:      idRand,
		// AWS ids look like "9067729b3d-<uuid>": an identity store prefix, then a UUID.
		storePfx:   fmt.Sprintf("%010x", idRand.Uint64()&0xffffffffff),
		users:      map[string]*user{},
		byUserName: map[string]*user{},
		byUserFold: map[string][]*user{},
		groups:     map[string]*group{},
		byGroupNm:  map[string]*group{},
		requests:   map[string]int{},
		limits:     limiterState{cfg: opts.Limits, buckets: map[string]*tokenBucket{}, limited: map[string]int{}},
	}
}

// BasePath returns the route prefix, e.g. "/scim/v2".
func (s *Server) BasePath() string { return s.basePath }

// Handler returns the server as an http.Handler.
func (s *Server) Handler() http.Handler { return s }

// Start listens on addr ("" means 127.0.0.1:0) and serves until Close. It returns the SCIM base
// URL (scheme, host and base path), ready for scim.New.
func (s *Server) Start(addr string) (string, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("scimtest: listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	s.mu.Lock()
	if s.httpSrv != nil {
		s.mu.Unlock()
		_ = ln.Close()
		return "", errors.New("scimtest: already started")
	}
	s.httpSrv, s.listener = srv, ln
	s.baseURL = "http://" + ln.Addr().String() + s.basePath
	s.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
	return s.baseURL, nil
}

// URL returns the base URL after Start, or "".
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.baseURL
}

// Close stops a server begun with Start. It is a no-op otherwise.
func (s *Server) Close() error {
	s.mu.Lock()
	srv := s.httpSrv
	s.httpSrv = nil
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(ctx)
}

// SetToken rotates the accepted bearer token; the old one is rejected from now on.
func (s *Server) SetToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token = token
}

// ExpireToken makes every request fail with 401 while on, whatever token it carries, as an
// expired AWS SCIM token does.
func (s *Server) ExpireToken(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expired = on
}

// SetFaults replaces the random faults.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
}

// Inject queues scripted faults; each is consumed by the next authenticated request it matches.
func (s *Server) Inject(faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script, faults...)
}

// FailNext makes the next n authenticated requests fail with status. A 429 carries the
// Retry-After of the current Faults.
func (s *Server) FailNext(n int, status int) {
	s.mu.Lock()
	ra := s.faults.RetryAfter
	s.mu.Unlock()
	for range n {
		f := Fault{Status: status}
		if status == http.StatusTooManyRequests {
			f.RetryAfter = ra
		}
		s.Inject(f)
	}
}

// SetFaultFunc installs a per-request fault hook (nil removes it). It runs after scripted faults
// and before random ones.
func (s *Server) SetFaultFunc(fn FaultFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faultFunc = fn
}

// --- seeding and inspection ---

func (s *Server) newIDLocked() string {
	r := s.idRand
	a, b := r.Uint64(), r.Uint64()
	// A version-4-shaped UUID after the store prefix, like AWS's ids.
	return fmt.Sprintf("%s-%08x-%04x-4%03x-%04x-%012x", s.storePfx,
		uint32(a>>32), uint16(a>>16), uint16(a)&0x0fff, (uint16(b>>48)&0x3fff)|0x8000, b&0xffffffffffff)
}

func (s *Server) addUserLocked(userName, externalID, displayName, givenName, familyName, email string, active bool) (*user, error) {
	// Uniqueness is exact, so "ann@x.com" and "Ann@x.com" can both exist and a case-insensitive
	// filter (listUsers) can answer with either: AWS documents neither (doc.go).
	if _, dup := s.byUserName[userName]; dup {
		return nil, errDuplicate
	}
	s.seq++
	now := s.now().UTC()
	u := &user{
		seq: s.seq, id: s.newIDLocked(), userName: userName, externalID: externalID,
		displayName: displayName, givenName: givenName, familyName: familyName, email: email,
		active: active, created: now, modified: now, groups: map[string]struct{}{},
	}
	s.users[u.id] = u
	s.userOrder = append(s.userOrder, u)
	s.byUserName[userName] = u
	k := strings.ToLower(userName)
	s.byUserFold[k] = append(s.byUserFold[k], u)
	return u, nil
}

func (s *Server) addGroupLocked(displayName, externalID string) (*group, error) {
	if _, dup := s.byGroupNm[displayName]; dup {
		return nil, errDuplicate
	}
	s.seq++
	now := s.now().UTC()
	g := &group{seq: s.seq, id: s.newIDLocked(), displayName: displayName, externalID: externalID,
		members: map[string]struct{}{}, created: now, modified: now}
	s.groups[g.id] = g
	s.groupOrder = append(s.groupOrder, g)
	s.byGroupNm[displayName] = g
	return g, nil
}

var errDuplicate = errors.New("duplicate")

// AddUser seeds an active user and returns its id. It panics on a duplicate userName: seeding
// is test set-up, and a duplicate there is a bug in the test.
func (s *Server) AddUser(userName, externalID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.addUserLocked(userName, externalID, userName, "Given", "Family", userName, true)
	if err != nil {
		panic(fmt.Sprintf("scimtest: AddUser %q: duplicate userName", userName))
	}
	return u.id
}

// AddGroup seeds an empty group and returns its id. It panics on a duplicate displayName.
func (s *Server) AddGroup(displayName, externalID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.addGroupLocked(displayName, externalID)
	if err != nil {
		panic(fmt.Sprintf("scimtest: AddGroup %q: duplicate displayName", displayName))
	}
	return g.id
}

// AddMember seeds a membership. It panics when the group or user does not exist.
func (s *Server) AddMember(groupID, userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, u := s.groups[groupID], s.users[userID]
	if g == nil || u == nil {
		panic(fmt.Sprintf("scimtest: AddMember %q %q: unknown group or user", groupID, userID))
	}
	g.members[userID] = struct{}{}
	g.sorted = nil
	u.groups[groupID] = struct{}{}
}

// UserID returns the id of the user with userName.
func (s *Server) UserID(userName string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.byUserName[userName]
	if !ok {
		return "", false
	}
	return u.id, true
}

// GroupID returns the id of the group with displayName.
func (s *Server) GroupID(displayName string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.byGroupNm[displayName]
	if !ok {
		return "", false
	}
	return g.id, true
}

// Members returns the sorted userNames of a group's members (nil for an unknown group).
func (s *Server) Members(groupID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groups[groupID]
	if g == nil {
		return nil
	}
	return s.memberNamesLocked(g)
}

func (s *Server) memberNamesLocked(g *group) []string {
	names := make([]string, 0, len(g.members))
	for id := range g.members {
		names = append(names, s.users[id].userName)
	}
	sort.Strings(names)
	return names
}

// Snapshot returns every group's displayName mapped to its members' userNames, sorted. Groups
// without members map to an empty, non-nil slice.
func (s *Server) Snapshot() map[string][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][]string, len(s.groups))
	for _, g := range s.groups {
		out[g.displayName] = s.memberNamesLocked(g)
	}
	return out
}

// --- counters ---

// Requests returns the number of requests received per route key ("GET /Users",
// "PATCH /Groups/{id}", ...), including those that were faulted or rejected.
func (s *Server) Requests() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.requests))
	for k, v := range s.requests {
		out[k] = v
	}
	return out
}

// Count returns the number of requests received for one route key.
func (s *Server) Count(route string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[route]
}

// TotalRequests returns the number of requests received on any route.
func (s *Server) TotalRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// Writes returns the number of requests received with a method other than GET (POST, PATCH, PUT,
// DELETE), including those that were faulted or rejected: every dry-run test asserts it stays 0.
func (s *Server) Writes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}

// Throttled returns how many 429s the server answered.
func (s *Server) Throttled() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.throttled
}

// ServerErrors returns how many 5xx the server answered.
func (s *Server) ServerErrors() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.serverErrors
}

// Unauthorized returns how many 401s the server answered.
func (s *Server) Unauthorized() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unauthorized
}

// MaxPatchValues returns the most member values seen in one PATCH or POST /Groups, including
// requests rejected for having too many. Assert it is ≤ MaxMemberValues.
func (s *Server) MaxPatchValues() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxPatchValues
}

// EmptyRemoves returns how many PATCH removes on members carried no value: each one emptied a
// group (or was rejected, under EmptyRemoveRejected). Correct clients keep it at 0.
func (s *Server) EmptyRemoves() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.emptyRemoves
}

// ResetCounters zeroes every counter; state (users, groups, memberships) is kept.
func (s *Server) ResetCounters() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = map[string]int{}
	s.total, s.writes, s.throttled, s.serverErrors, s.unauthorized = 0, 0, 0, 0, 0
	s.maxPatchValues, s.emptyRemoves = 0, 0
	s.limits.limited, s.limits.total = map[string]int{}, 0
}

// sortedMembersLocked returns a group's members in creation order, the order pages use. The
// result is cached until the membership changes, so paging a big group is not quadratic.
func (s *Server) sortedMembersLocked(g *group) []*user {
	if g.sorted != nil || len(g.members) == 0 {
		return g.sorted
	}
	us := make([]*user, 0, len(g.members))
	for id := range g.members {
		us = append(us, s.users[id])
	}
	slices.SortFunc(us, func(a, b *user) int { return cmpSeq(a.seq, b.seq) })
	g.sorted = us
	return us
}

func cmpSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// GroupInfo is one group as a test sees it.
type GroupInfo struct{ ID, DisplayName, ExternalID string }

// Groups lists every group, sorted by displayName (tests: orphans, duplicates, externalIds).
func (s *Server) Groups() []GroupInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]GroupInfo, 0, len(s.byGroupNm))
	for _, g := range s.byGroupNm {
		out = append(out, GroupInfo{ID: g.id, DisplayName: g.displayName, ExternalID: g.externalID})
	}
	slices.SortFunc(out, func(a, b GroupInfo) int { return strings.Compare(a.DisplayName, b.DisplayName) })
	return out
}

// RenameGroup renames a group the way an AWS administrator does in the console (tests).
func (s *Server) RenameGroup(groupID, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var g *group
	for _, x := range s.byGroupNm {
		if x.id == groupID {
			g = x
		}
	}
	if g == nil {
		return fmt.Errorf("no group %s", groupID)
	}
	if o, dup := s.byGroupNm[name]; dup && o != g {
		return fmt.Errorf("group name %q taken", name)
	}
	delete(s.byGroupNm, g.displayName)
	g.displayName = name
	s.byGroupNm[name] = g
	return nil
}

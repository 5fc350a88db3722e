package scimapply

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim"
)

// UserRef names an Okta user.
type UserRef struct {
	ID    string // Okta user id, 00u…: matched against SCIM externalId
	Login string // Okta login: matched against SCIM userName, exactly, when no externalId matches
}

// GroupRef names an Okta group.
type GroupRef struct {
	ID   string // Okta group id, 00g…: set as externalId of groups this package creates
	Name string // Okta group name: matched against SCIM displayName
}

// Strategy says how [Directory.ResolveUsers] found the users it was asked for.
type Strategy string

const (
	// StrategyCache: every user was already known; no request.
	StrategyCache Strategy = "cache"
	// StrategyLookup: the unknown users were looked up one by one (filter externalId, then
	// userName), a few at a time.
	StrategyLookup Strategy = "lookup"
	// StrategyList: all SCIM users were paged through once (100 per request) and indexed.
	StrategyList Strategy = "list"
	// StrategyListLookup: a listing stopped at its page budget or was older than this call, and
	// the users it did not find were then looked up one by one.
	StrategyListLookup Strategy = "list+lookup"
)

// Resolution is the result of [Directory.ResolveUsers].
type Resolution struct {
	// Users maps Okta user id → SCIM user for every user found.
	Users map[string]scim.User
	// Missing lists the users that are not provisioned in SCIM.
	Missing []UserRef
	// Errors maps Okta user id → the error that prevented resolving it (SCIM error, 401,
	// deadline); such users are neither found nor known to be missing.
	Errors map[string]error
	// Strategy is how the unknown users were resolved.
	Strategy Strategy
	// Unknown is how many of the requested users were not in the cache.
	Unknown int
	// Requests is the SCIM requests this call made.
	Requests int
}

// Directory resolves Okta users and groups to SCIM users and groups and caches what it learns.
// Build one per container (in main) and keep it across invocations: the cache is what makes a
// warm burst cost almost nothing but its PATCHes. It is safe for concurrent use.
//
// The cache holds positive answers only. A SCIM user deleted meanwhile is noticed when a PATCH
// rejects its id ([Directory.ForgetUser]); a group deleted meanwhile when a PATCH gets 404.
type Directory struct {
	api      SCIM
	selected func(name string) bool
	okta     OktaGroups // nil: no Okta API (identity conflicts then stay conflicts)

	lookupConcurrency int
	coldListMin       int
	coldListPages     int

	resolveMu sync.Mutex // one resolution at a time, so concurrent callers never list twice

	mu         sync.Mutex
	byExternal map[string]scim.User   // SCIM externalId → user
	byUserName map[string]scim.User   // SCIM userName, exactly as AWS holds it → user
	groups     map[string]cachedGroup // Okta group id → its SCIM group as last read (the id is what counts)
	now        func() time.Time
	size       int  // users seen by the last listing
	complete   bool // the last listing saw every user
	listings   int
	lookups    int
}

// DirectoryOption configures a Directory.
type DirectoryOption func(*Directory)

// WithSelection sets which group names may be touched (default: all).
func WithSelection(match func(name string) bool) DirectoryOption {
	return func(d *Directory) { d.selected = match }
}

// WithLookupConcurrency bounds concurrent per-user lookups (default 4: AWS's quotas page gives each
// SCIM read API 40 requests/s per identity store, shared with every other client of the store).
func WithLookupConcurrency(n int) DirectoryOption {
	return func(d *Directory) {
		if n > 0 {
			d.lookupConcurrency = n
		}
	}
}

// WithColdListing tunes the first listing of a cold directory, whose size is unknown: with at
// least minUnknown unknown users, page through up to max(unknown, pages) pages (default 8 and 50,
// i.e. directories up to 5,000 users are indexed on first use). A warm container then resolves
// the following batches from the index, which is what makes a burst cheap; beyond the budget
// the listing stops and the rest is looked up one by one, so its cost is bounded.
func WithColdListing(minUnknown, pages int) DirectoryOption {
	return func(d *Directory) {
		d.coldListMin = minUnknown
		d.coldListPages = pages
	}
}

// NewDirectory returns an empty directory over api.
func NewDirectory(api SCIM, opts ...DirectoryOption) *Directory {
	d := &Directory{
		api:               api,
		selected:          func(string) bool { return true },
		lookupConcurrency: 4,
		coldListMin:       8,
		coldListPages:     50,
		byExternal:        map[string]scim.User{},
		byUserName:        map[string]scim.User{},
		groups:            map[string]cachedGroup{},
		now:               time.Now,
	}
	for _, o := range opts {
		o(d)
	}
	return d
}

// UseSCIM replaces the SCIM client after construction: the sync worker gives its directory the
// read-only client of a dry run (scim.ReadOnlyOf) this way. Call it before the directory is used.
func (d *Directory) UseSCIM(api SCIM) { d.api = api }

// DirectoryStats describes the cache.
type DirectoryStats struct {
	CachedUsers   int
	CachedGroups  int
	KnownSize     int  // users seen by the last listing
	CompleteIndex bool // the last listing saw every user
	Listings      int  // listings started
	Lookups       int  // per-user lookups made
}

// Stats returns cache figures for logs and benchmarks.
func (d *Directory) Stats() DirectoryStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := len(d.byExternal)
	for _, u := range d.byUserName {
		if u.ExternalID == "" || d.byExternal[u.ExternalID].ID != u.ID {
			n++
		}
	}
	return DirectoryStats{CachedUsers: n, CachedGroups: len(d.groups), KnownSize: d.size,
		CompleteIndex: d.complete, Listings: d.listings, Lookups: d.lookups}
}

// cachedLocked finds ref in the index: externalId = Okta user id first, then userName = login,
// both compared exactly (see rememberLocked).
func (d *Directory) cachedLocked(ref UserRef) (scim.User, bool) {
	if u, ok := d.byExternal[ref.ID]; ok && ref.ID != "" {
		return u, true
	}
	if ref.Login != "" {
		if u, ok := d.byUserName[ref.Login]; ok {
			return u, true
		}
	}
	return scim.User{}, false
}

func (d *Directory) rememberLocked(u scim.User) {
	if u.ExternalID != "" {
		d.byExternal[u.ExternalID] = u
	}
	if u.UserName != "" {
		// userName links an Okta login only when it is the same string, case included. AWS does not
		// document whether it compares userName case-insensitively (RFC 7643 says it should), and
		// the two mistakes differ: linking "Ann@x.com" to the SCIM user "ann@x.com", who may be
		// someone else, grants the wrong access; not linking leaves the user "not provisioned",
		// retried and then dead-lettered with that reason, access missing and visible. Okta's own
		// provisioning sets externalId, matched first, so only users provisioned another way
		// depend on this.
		d.byUserName[u.UserName] = u
	}
}

// Remember adds users to the cache (the reconciler learns many from group member listings).
func (d *Directory) Remember(users ...scim.User) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, u := range users {
		d.rememberLocked(u)
	}
}

// ForgetUser drops ref from the cache, after SCIM rejected its cached id (user deleted or
// re-provisioned with a new id); the next resolution looks it up again.
func (d *Directory) ForgetUser(ref UserRef) {
	d.mu.Lock()
	defer d.mu.Unlock()
	u, ok := d.cachedLocked(ref)
	if !ok {
		return
	}
	for k, v := range d.byExternal {
		if v.ID == u.ID {
			delete(d.byExternal, k)
		}
	}
	for k, v := range d.byUserName {
		if v.ID == u.ID {
			delete(d.byUserName, k)
		}
	}
	d.complete = false
}

// ResolveUsers finds the SCIM users of refs. Cached users cost nothing. For the others it
// chooses, by expected request count, between per-user lookups (1 request per user, 2 when the
// userName fallback is needed; a few concurrently) and paging once through all SCIM users
// (1 request per 100 users, then every later batch of the warm container resolves from the index):
//
//   - directory size known from an earlier complete listing: list when the unknown users
//     outnumber its pages;
//   - size unknown (cold container): list when at least minUnknown users are unknown, within a
//     budget of max(unknown, pages) pages ([WithColdListing]).
//
// A user absent from a listing completed in this call is not provisioned; users absent from an
// earlier listing (provisioned since) or not reached within the budget are looked up one by one.
func (d *Directory) ResolveUsers(ctx context.Context, refs []UserRef) Resolution {
	d.resolveMu.Lock()
	defer d.resolveMu.Unlock()

	res := Resolution{Users: map[string]scim.User{}, Errors: map[string]error{}, Strategy: StrategyCache}
	var unknown []UserRef
	seen := map[string]bool{}
	d.mu.Lock()
	for _, r := range refs {
		if seen[r.ID] {
			continue
		}
		seen[r.ID] = true
		if u, ok := d.cachedLocked(r); ok {
			res.Users[r.ID] = u
		} else {
			unknown = append(unknown, r)
		}
	}
	size, complete := d.size, d.complete
	d.mu.Unlock()
	res.Unknown = len(unknown)
	if len(unknown) == 0 {
		return res
	}

	list, budget := false, 0
	switch {
	case complete || size > 0:
		pages := (size + 99) / 100
		list, budget = len(unknown) > pages, len(unknown)
	case len(unknown) >= d.coldListMin:
		list, budget = true, max(len(unknown), d.coldListPages)
	}
	if !list {
		res.Strategy = StrategyLookup
		d.lookupAll(ctx, unknown, &res)
		return res
	}

	res.Strategy = StrategyList
	finished, pages, err := d.list(ctx, budget)
	res.Requests += pages
	var rest []UserRef
	d.mu.Lock()
	for _, r := range unknown {
		if u, ok := d.cachedLocked(r); ok {
			res.Users[r.ID] = u
		} else {
			rest = append(rest, r)
		}
	}
	d.mu.Unlock()
	switch {
	case err != nil:
		for _, r := range rest {
			res.Errors[r.ID] = err
		}
	case finished:
		res.Missing = append(res.Missing, rest...)
	case len(rest) > 0:
		res.Strategy = StrategyListLookup
		d.lookupAll(ctx, rest, &res)
	}
	return res
}

var errBudget = errors.New("listing page budget reached")

// list pages through all SCIM users, indexing them, for at most budget pages. It reports whether
// the listing completed and how many pages it read.
func (d *Directory) list(ctx context.Context, budget int) (finished bool, pages int, err error) {
	d.mu.Lock()
	d.listings++
	d.mu.Unlock()
	seen := 0
	err = d.api.ListUsers(ctx, func(page []scim.User) error {
		pages++
		seen += len(page)
		d.mu.Lock()
		for _, u := range page {
			d.rememberLocked(u)
		}
		d.mu.Unlock()
		if pages >= budget {
			return errBudget
		}
		return nil
	})
	switch {
	case errors.Is(err, errBudget):
		d.mu.Lock()
		d.size, d.complete = max(d.size, seen), false
		d.mu.Unlock()
		return false, pages, nil
	case err != nil:
		return false, pages, fmt.Errorf("list SCIM users: %w", err)
	}
	d.mu.Lock()
	d.size, d.complete = seen, true
	d.mu.Unlock()
	return true, pages, nil
}

// lookupAll looks users up one by one, lookupConcurrency at a time. A fatal error (401, deadline)
// stops the remaining lookups; they report the same error.
func (d *Directory) lookupAll(ctx context.Context, refs []UserRef, res *Resolution) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	type out struct {
		ref  UserRef
		u    scim.User
		n    int
		err  error
		miss bool
	}
	results := make(chan out)
	sem := make(chan struct{}, d.lookupConcurrency)
	go func() {
		var wg sync.WaitGroup
		for _, r := range refs {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				if err := context.Cause(ctx); err != nil {
					results <- out{ref: r, err: err}
					return
				}
				u, n, err := d.lookup(ctx, r)
				if err != nil && Fatal(err) {
					cancel(err)
				}
				results <- out{ref: r, u: u, n: n, err: err, miss: errors.Is(err, ErrUserNotProvisioned)}
			}()
		}
		wg.Wait()
		close(results)
	}()
	for o := range results {
		res.Requests += o.n
		switch {
		case o.miss:
			res.Missing = append(res.Missing, o.ref)
		case o.err != nil:
			res.Errors[o.ref.ID] = o.err
		default:
			res.Users[o.ref.ID] = o.u
		}
	}
}

// lookup finds one user: externalId = Okta user id, then userName = login. An answer is taken
// only when its attribute equals the asked value exactly: AWS's filters may compare without case
// (undocumented), and a near match is not a link (rememberLocked).
func (d *Directory) lookup(ctx context.Context, r UserRef) (scim.User, int, error) {
	d.mu.Lock()
	d.lookups++
	d.mu.Unlock()
	n := 0
	if r.ID != "" {
		n++
		u, err := d.api.FindUserByExternalID(ctx, r.ID)
		if err == nil {
			d.Remember(u)
			if u.ExternalID == r.ID {
				return u, n, nil
			}
			err = scim.ErrNotFound
		}
		if !errors.Is(err, scim.ErrNotFound) {
			return scim.User{}, n, fmt.Errorf("find SCIM user by externalId %s: %w", r.ID, err)
		}
	}
	if r.Login != "" {
		n++
		u, err := d.api.FindUserByUserName(ctx, r.Login)
		if err == nil {
			d.Remember(u)
			if u.UserName == r.Login {
				return u, n, nil
			}
			err = scim.ErrNotFound
		}
		if !errors.Is(err, scim.ErrNotFound) {
			return scim.User{}, n, fmt.Errorf("find SCIM user by userName: %w", err)
		}
	}
	return scim.User{}, n, ErrUserNotProvisioned
}

// cachedGroup is a group as read from AWS at readAt.
type cachedGroup struct {
	group  scim.Group
	readAt time.Time
}

// CachedGroup returns the cached SCIM group of an Okta group id, as last read.
func (d *Directory) CachedGroup(oktaGroupID string) (scim.Group, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c, ok := d.groups[oktaGroupID]
	return c.group, ok
}

// SetGroup records the SCIM group of an Okta group as just read from AWS (the reconciler's
// listing, for instance).
func (d *Directory) SetGroup(oktaGroupID string, g scim.Group) { d.remember(oktaGroupID, g) }

func (d *Directory) remember(oktaGroupID string, g scim.Group) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.groups[oktaGroupID] = cachedGroup{group: g, readAt: d.now()}
}

// ForgetGroup drops the cached SCIM group of an Okta group (deleted meanwhile).
func (d *Directory) ForgetGroup(oktaGroupID string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.groups, oktaGroupID)
}

// SizeHint tells the directory that SCIM holds at least n users, for instance the distinct
// members the reconciler just saw in group listings. A cold directory otherwise guesses its size
// (see [WithColdListing]); with the hint, [Directory.ResolveUsers] weighs one listing (n/100
// pages) against per-user lookups as it does after a listing: a reconcile with 20 unknown users in
// a 10,000-user directory then costs ~30 lookups, not a 50-page listing cut short plus lookups.
// A smaller n than already known is ignored; the hint never claims the index is complete.
func (d *Directory) SizeHint(n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if n > d.size {
		d.size = n
	}
}

package membership

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrInvalidChange is wrapped by every error [Validate] returns.
var ErrInvalidChange = errors.New("invalid change")

// Validate reports whether c carries what its kind needs: a known kind, an event uuid, a
// published time, a group for group-scoped kinds and a user for user-scoped kinds.
func Validate(c Change) error {
	if !c.Kind.Valid() {
		return fmt.Errorf("%w: unknown kind %q", ErrInvalidChange, c.Kind)
	}
	if c.EventUUID == "" {
		return fmt.Errorf("%w: %s without event uuid", ErrInvalidChange, c.Kind)
	}
	if c.Published.IsZero() {
		return fmt.Errorf("%w: %s event %s without published time", ErrInvalidChange, c.Kind, c.EventUUID)
	}
	needGroup := !c.Kind.User()
	needUser := c.Kind.Member() || c.Kind.User()
	if needGroup && c.GroupID == "" {
		return fmt.Errorf("%w: %s event %s without group id", ErrInvalidChange, c.Kind, c.EventUUID)
	}
	if needUser && c.UserID == "" {
		return fmt.Errorf("%w: %s event %s without user id", ErrInvalidChange, c.Kind, c.EventUUID)
	}
	return nil
}

// Key identifies one membership: an Okta group and an Okta user.
type Key struct {
	GroupID string
	UserID  string
}

// KeyOf returns the membership c is about.
func KeyOf(c Change) Key { return Key{GroupID: c.GroupID, UserID: c.UserID} }

func (k Key) String() string { return k.GroupID + "/" + k.UserID }

func compareKeys(a, b Key) int {
	if c := strings.Compare(a.GroupID, b.GroupID); c != 0 {
		return c
	}
	return strings.Compare(a.UserID, b.UserID)
}

// kindRank makes remove beat add on equal Published (least privilege). Other kinds never compete
// with membership kinds for a Key; they rank below so the order stays total.
func kindRank(k Kind) int {
	switch k {
	case KindRemove:
		return 2
	case KindAdd:
		return 1
	}
	return 0
}

// Compare orders changes by the collapsing rule (see the package documentation): it returns +1
// when a wins over b, -1 when b wins, 0 only when a and b are the same change. It is a total
// order, so sorting or picking a maximum with it never depends on input order.
func Compare(a, b Change) int {
	if c := a.Published.Compare(b.Published); c != 0 {
		return c
	}
	if c := cmp.Compare(kindRank(a.Kind), kindRank(b.Kind)); c != 0 {
		return c
	}
	if c := strings.Compare(a.EventUUID, b.EventUUID); c != 0 {
		return c
	}
	for _, p := range [...][2]string{
		{string(a.Kind), string(b.Kind)},
		{a.GroupID, b.GroupID},
		{a.UserID, b.UserID},
		{a.Login, b.Login},
		{a.GroupName, b.GroupName},
	} {
		if c := strings.Compare(p[0], p[1]); c != 0 {
			return c
		}
	}
	return 0
}

// normalize drops the location and monotonic reading of Published, so that two deliveries of
// one event compare equal with == whatever zone they were parsed in.
func normalize(c Change) Change {
	c.Published = c.Published.UTC()
	return c
}

// Collapsed is the result of [Collapse].
type Collapsed struct {
	// Members holds the winning add or remove per (group, user).
	Members map[Key]Change
	// Others holds the valid non-membership changes (rename, group_delete, user lifecycle),
	// one per (event uuid, kind, group, user), sorted oldest first by [Compare].
	Others []Change
	// Invalid holds the changes [Validate] rejects, deduplicated, sorted by [Compare]. Nothing
	// can apply them; the caller decides whether to drop or dead-letter them.
	Invalid []Change
}

// Collapse reduces a batch of changes, in any order and with any duplicates, to the winning
// membership change per (group, user) plus the other changes deduplicated. The result depends
// only on the set of distinct changes given, never on their order or multiplicity.
func Collapse(changes []Change) Collapsed {
	type otherKey struct {
		uuid          string
		kind          Kind
		group, userID string
	}
	res := Collapsed{Members: make(map[Key]Change, len(changes))}
	var others map[otherKey]Change
	var invalid map[Change]struct{}
	for _, c := range changes {
		c = normalize(c)
		if Validate(c) != nil {
			if invalid == nil {
				invalid = make(map[Change]struct{})
			}
			invalid[c] = struct{}{}
			continue
		}
		if c.Kind.Member() {
			k := KeyOf(c)
			if cur, ok := res.Members[k]; !ok || Compare(c, cur) > 0 {
				res.Members[k] = c
			}
			continue
		}
		if others == nil {
			others = make(map[otherKey]Change)
		}
		ok := otherKey{c.EventUUID, c.Kind, c.GroupID, c.UserID}
		// Same event and target but different payload (group name, login) cannot come from
		// redelivery; keep the greater so the choice is still order independent.
		if cur, seen := others[ok]; !seen || Compare(c, cur) > 0 {
			others[ok] = c
		}
	}
	for _, c := range others {
		res.Others = append(res.Others, c)
	}
	slices.SortFunc(res.Others, Compare)
	for c := range invalid {
		res.Invalid = append(res.Invalid, c)
	}
	slices.SortFunc(res.Invalid, Compare)
	return res
}

// Keys returns the keys of Members sorted by group id, then user id.
func (r Collapsed) Keys() []Key {
	keys := make([]Key, 0, len(r.Members))
	for k := range r.Members {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareKeys)
	return keys
}

// GroupChanges is the winning membership changes of one Okta group, sorted by user id.
type GroupChanges struct {
	GroupID string
	Changes []Change
}

// ByGroup returns the winners grouped by Okta group id, groups sorted by id, so the worker can
// plan and PATCH one group at a time in a deterministic order.
func (r Collapsed) ByGroup() []GroupChanges {
	keys := r.Keys()
	// One backing array for all groups; each group's slice has capped capacity so a caller's
	// append cannot overwrite the next group.
	all := make([]Change, len(keys))
	var out []GroupChanges
	start := 0
	for i, k := range keys {
		all[i] = r.Members[k]
		if i+1 == len(keys) || keys[i+1].GroupID != k.GroupID {
			out = append(out, GroupChanges{GroupID: k.GroupID, Changes: all[start : i+1 : i+1]})
			start = i + 1
		}
	}
	return out
}

// Superseded reports whether c is a membership change that lost to another change for its key
// in this batch (so the worker can acknowledge it without applying it). It is false for the
// winner itself, for its duplicates, and for changes that are not valid membership changes.
func (r Collapsed) Superseded(c Change) bool {
	if !c.Kind.Member() || Validate(c) != nil {
		return false
	}
	w, ok := r.Members[KeyOf(c)]
	return ok && Compare(normalize(c), w) != 0
}

package scim

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// User is the part of a SCIM user the sync needs. ExternalID is the Okta user id when Okta
// provisioned the user.
type User struct {
	ID, UserName, ExternalID, DisplayName string
	Active                                bool
}

// Group is a SCIM group. AWS never returns members on group reads: use ListGroupMembers or
// IsMember.
type Group struct {
	ID, DisplayName, ExternalID string
}

const (
	schemaGroup = "urn:ietf:params:scim:schemas:core:2.0:Group"
	schemaPatch = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
)

type userJSON struct {
	ID          string `json:"id"`
	UserName    string `json:"userName"`
	ExternalID  string `json:"externalId"`
	DisplayName string `json:"displayName"`
	Active      bool   `json:"active"`
}

func (u userJSON) user() User {
	return User(u)
}

type groupJSON struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName"`
	ExternalID  string `json:"externalId"`
}

func (g groupJSON) group() Group {
	return Group(g)
}

// listJSON is a list response in either of AWS's shapes (with totalResults, or cursor-paged
// with nextCursor).
type listJSON[T any] struct {
	TotalResults int    `json:"totalResults"`
	ItemsPerPage int    `json:"itemsPerPage"`
	NextCursor   string `json:"nextCursor"`
	Resources    []T    `json:"Resources"`
}

type memberRef struct {
	Value string `json:"value"`
}

type patchOperation struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

type patchBody struct {
	Schemas    []string         `json:"schemas"`
	Operations []patchOperation `json:"Operations"`
}

type createGroupBody struct {
	Schemas     []string    `json:"schemas"`
	DisplayName string      `json:"displayName"`
	ExternalID  string      `json:"externalId,omitempty"`
	Members     []memberRef `json:"members,omitempty"`
}

// eqFilter builds `attr eq "value"` with the value quoted by JSON string rules, so quotes,
// backslashes and control characters are escaped and non-ASCII passes through as UTF-8.
func eqFilter(attr, value string) string {
	b, err := marshal(value)
	if err != nil { // a Go string always marshals; keep the compiler and the reader honest
		b = []byte(strconv.Quote(value))
	}
	return attr + " eq " + string(b)
}

func filterQuery(filter string) string {
	return url.Values{"filter": {filter}}.Encode()
}

var errEmptyID = errors.New("empty id")

func userPath(id string) string  { return "/Users/" + url.PathEscape(id) }
func groupPath(id string) string { return "/Groups/" + url.PathEscape(id) }

// --- users ---

// GetUser returns the user with id; errors.Is(err, ErrNotFound) when there is none.
func (c *Client) GetUser(ctx context.Context, id string) (User, error) {
	if id == "" {
		return User{}, fmt.Errorf("get user: %w", errEmptyID)
	}
	var u userJSON
	if _, err := c.do(ctx, call{op: OpGetUser, method: http.MethodGet, path: userPath(id), out: &u}); err != nil {
		return User{}, fmt.Errorf("get user %s: %w", id, err)
	}
	return u.user(), nil
}

// FindUserByUserName returns the user whose userName is name, or ErrNotFound.
func (c *Client) FindUserByUserName(ctx context.Context, name string) (User, error) {
	u, err := c.findUser(ctx, OpFindUserByUserName, "userName", name)
	if err != nil {
		return User{}, fmt.Errorf("find user by userName %q: %w", name, err)
	}
	return u, nil
}

// FindUserByExternalID returns the user whose externalId is id (the Okta user id), or
// ErrNotFound.
func (c *Client) FindUserByExternalID(ctx context.Context, id string) (User, error) {
	u, err := c.findUser(ctx, OpFindUserByExternalID, "externalId", id)
	if err != nil {
		return User{}, fmt.Errorf("find user by externalId %q: %w", id, err)
	}
	return u, nil
}

func (c *Client) findUser(ctx context.Context, op, attr, value string) (User, error) {
	if value == "" {
		// AWS answers 400 to an empty filter value; nobody has that name anyway.
		return User{}, ErrNotFound
	}
	var l listJSON[userJSON]
	if _, err := c.do(ctx, call{op: op, method: http.MethodGet, path: "/Users", query: filterQuery(eqFilter(attr, value)), out: &l}); err != nil {
		return User{}, err
	}
	if len(l.Resources) == 0 {
		return User{}, ErrNotFound
	}
	return l.Resources[0].user(), nil
}

// ListUsers calls fn with every page of users (cursor paging, count = page size) until the
// last page or fn's first error, which is returned wrapped.
func (c *Client) ListUsers(ctx context.Context, fn func([]User) error) error {
	err := listAll(ctx, c, OpListUsers, "/Users", "", func(page []userJSON) error {
		us := make([]User, len(page))
		for i, u := range page {
			us[i] = u.user()
		}
		return fn(us)
	})
	if err != nil {
		return fmt.Errorf("list users: %w", err)
	}
	return nil
}

// ListGroupMembers returns every member of the group (GET /Users?filter=groups.value eq …,
// cursor-paged to the end). An unknown group yields no members, as AWS answers an empty list.
func (c *Client) ListGroupMembers(ctx context.Context, groupID string) ([]User, error) {
	if groupID == "" {
		return nil, fmt.Errorf("list group members: %w", errEmptyID)
	}
	var out []User
	err := listAll(ctx, c, OpListGroupMembers, "/Users", eqFilter("groups.value", groupID), func(page []userJSON) error {
		for _, u := range page {
			out = append(out, u.user())
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list members of group %s: %w", groupID, err)
	}
	return out, nil
}

// maxPages bounds a listing: 100k users (AWS's quota) at the smallest page size is 100k
// pages; a server that keeps answering cursors past that is broken.
const maxPages = 100_000

// listAll walks AWS cursor paging: the first request carries a bare `cursor`, each next one
// the previous nextCursor; a page may be short while nextCursor is present.
func listAll[T any](ctx context.Context, c *Client, op, path, filter string, fn func([]T) error) error {
	cursor := ""
	for n := 1; ; n++ {
		if n > maxPages {
			return fmt.Errorf("more than %d pages", maxPages)
		}
		q := url.Values{"count": {strconv.Itoa(c.pageSize)}}
		if filter != "" {
			q.Set("filter", filter)
		}
		// AWS: "The first request made with cursor must be empty (…/Users?cursor)"; later ones
		// carry the previous nextCursor.
		qs := q.Encode() + "&cursor"
		if cursor != "" {
			qs += "=" + url.QueryEscape(cursor)
		}
		var page listJSON[T]
		if _, err := c.do(ctx, call{op: op, method: http.MethodGet, path: path, query: qs, out: &page}); err != nil {
			return fmt.Errorf("page %d: %w", n, err)
		}
		if len(page.Resources) > 0 {
			if err := fn(page.Resources); err != nil {
				return err
			}
		}
		if page.NextCursor == "" {
			return nil
		}
		if page.NextCursor == cursor {
			return fmt.Errorf("page %d: cursor did not advance", n)
		}
		cursor = page.NextCursor
	}
}

// --- groups ---

// GetGroup returns the group with id (without members); ErrNotFound when there is none.
func (c *Client) GetGroup(ctx context.Context, id string) (Group, error) {
	if id == "" {
		return Group{}, fmt.Errorf("get group: %w", errEmptyID)
	}
	var g groupJSON
	if _, err := c.do(ctx, call{op: OpGetGroup, method: http.MethodGet, path: groupPath(id), out: &g}); err != nil {
		return Group{}, fmt.Errorf("get group %s: %w", id, err)
	}
	return g.group(), nil
}

// FindGroupByDisplayName returns the group named name, or ErrNotFound.
func (c *Client) FindGroupByDisplayName(ctx context.Context, name string) (Group, error) {
	return c.findGroup(ctx, OpFindGroupByDisplayName, "displayName", name)
}

// FindGroupsByExternalID returns every group whose externalId is id (this project sets it to the
// Okta group id), cursor-paged to the end; none is an empty list, not an error. AWS documents
// (externalId) as a ListGroups filter and answers a list
// (docs.aws.amazon.com/singlesignon/latest/developerguide/listgroups.html, "Supported filter
// combinations"), and nothing makes externalId unique: PatchGroup accepts externalId from any
// client (patchgroup.html, Constraints), CreateGroup's 409 is about the group's name
// (creategroup.html, ConflictException), and RFC 7643 §3.1 gives only `id` a uniqueness. So an
// administrator can give a second group an Okta group's id by hand, and a caller that must know
// (the identity rule, pkg/scimapply) gets all of them. Only exact matches are returned: the
// attribute is caseExact (RFC 7643 §3.1), and AWS does not document how its filter compares.
func (c *Client) FindGroupsByExternalID(ctx context.Context, id string) ([]Group, error) {
	if id == "" {
		return nil, fmt.Errorf("find groups by externalId: %w", errEmptyID)
	}
	var out []Group
	err := listAll(ctx, c, OpFindGroupByExternalID, "/Groups", eqFilter("externalId", id), func(page []groupJSON) error {
		for _, g := range page {
			if gr := g.group(); gr.ExternalID == id {
				out = append(out, gr)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("find groups by externalId %q: %w", id, err)
	}
	return out, nil
}

// findGroup returns the first group whose attr equals value, or ErrNotFound.
func (c *Client) findGroup(ctx context.Context, op, attr, value string) (Group, error) {
	if value == "" {
		return Group{}, fmt.Errorf("find group by %s %q: %w", attr, value, ErrNotFound)
	}
	var l listJSON[groupJSON]
	if _, err := c.do(ctx, call{op: op, method: http.MethodGet, path: "/Groups",
		query: filterQuery(eqFilter(attr, value)), out: &l}); err != nil {
		return Group{}, fmt.Errorf("find group by %s %q: %w", attr, value, err)
	}
	if len(l.Resources) == 0 {
		return Group{}, fmt.Errorf("find group by %s %q: %w", attr, value, ErrNotFound)
	}
	return l.Resources[0].group(), nil
}

// ListGroups calls fn with every page of groups until the last page or fn's first error.
func (c *Client) ListGroups(ctx context.Context, fn func([]Group) error) error {
	err := listAll(ctx, c, OpListGroups, "/Groups", "", func(page []groupJSON) error {
		gs := make([]Group, len(page))
		for i, g := range page {
			gs[i] = g.group()
		}
		return fn(gs)
	})
	if err != nil {
		return fmt.Errorf("list groups: %w", err)
	}
	return nil
}

// ListUserGroups returns every group the user is a member of, with AWS's
// `members.value eq "<user id>"` ListGroups filter, cursor-paged to the end. AWS documents
// (members.value) among ListGroups' supported filter combinations and a 404
// ResourceNotFoundException "when filter querying with a nonexisting member"
// (docs.aws.amazon.com/singlesignon/latest/developerguide/listgroups.html, Constraints and
// Errors): a user that does not exist is errors.Is(err, ErrNotFound).
func (c *Client) ListUserGroups(ctx context.Context, userID string) ([]Group, error) {
	if userID == "" {
		return nil, fmt.Errorf("list groups of user: %w", errEmptyID)
	}
	var out []Group
	err := listAll(ctx, c, OpListUserGroups, "/Groups", eqFilter("members.value", userID), func(page []groupJSON) error {
		for _, g := range page {
			out = append(out, g.group())
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list groups of user %s: %w", userID, err)
	}
	return out, nil
}

// IsMember reports whether userID is a member of groupID, with AWS's
// `id eq "g" and members eq "u"` filter. A group that does not exist reports false.
func (c *Client) IsMember(ctx context.Context, groupID, userID string) (bool, error) {
	if groupID == "" || userID == "" {
		return false, fmt.Errorf("is member: %w", errEmptyID)
	}
	f := eqFilter("id", groupID) + " and " + eqFilter("members", userID)
	var l listJSON[groupJSON]
	if _, err := c.do(ctx, call{op: OpIsMember, method: http.MethodGet, path: "/Groups", query: filterQuery(f), out: &l}); err != nil {
		return false, fmt.Errorf("is user %s member of group %s: %w", userID, groupID, err)
	}
	return len(l.Resources) > 0, nil
}

// CreateGroup creates g with the given members. AWS takes at most 100 members on create, so
// the first 100 go with the POST and the rest follow as AddMembers PATCHes. If those fail, the
// created group is returned with the error, so the caller knows its id.
// errors.Is(err, ErrConflict) when the displayName is taken.
func (c *Client) CreateGroup(ctx context.Context, g Group, memberIDs []string) (Group, error) {
	if g.DisplayName == "" {
		return Group{}, errors.New("create group: empty displayName")
	}
	ids, err := uniqueIDs(memberIDs)
	if err != nil {
		return Group{}, fmt.Errorf("create group %q: %w", g.DisplayName, err)
	}
	first := ids[:min(len(ids), MaxMembersPerRequest)]
	body := createGroupBody{Schemas: []string{schemaGroup}, DisplayName: g.DisplayName, ExternalID: g.ExternalID, Members: refs(first)}
	var out groupJSON
	if _, err := c.do(ctx, call{op: OpCreateGroup, method: http.MethodPost, path: "/Groups", body: body, out: &out, members: len(first)}); err != nil {
		return Group{}, fmt.Errorf("create group %q: %w", g.DisplayName, err)
	}
	created := out.group()
	if rest := ids[len(first):]; len(rest) > 0 {
		if _, err := c.AddMembers(ctx, created.ID, rest); err != nil {
			return created, fmt.Errorf("create group %q: members beyond the first %d: %w", g.DisplayName, MaxMembersPerRequest, err)
		}
	}
	return created, nil
}

// DeleteGroup deletes the group; ErrNotFound when it does not exist.
func (c *Client) DeleteGroup(ctx context.Context, id string) error {
	if id == "" {
		return fmt.Errorf("delete group: %w", errEmptyID)
	}
	if _, err := c.do(ctx, call{op: OpDeleteGroup, method: http.MethodDelete, path: groupPath(id)}); err != nil {
		return fmt.Errorf("delete group %s: %w", id, err)
	}
	return nil
}

// AddMembers adds users to a group in PATCHes of at most 100 values and returns the AWS request
// id of each PATCH sent. Duplicate ids are sent once; no ids sends nothing. On error the ids of
// the PATCHes already applied are returned with it.
func (c *Client) AddMembers(ctx context.Context, groupID string, userIDs []string) ([]string, error) {
	return c.patchMembers(ctx, OpAddMembers, "add", groupID, userIDs)
}

// RemoveMembers removes users from a group like AddMembers adds them. It never sends a remove
// without values: AWS once emptied the whole group on that (it now answers 400).
func (c *Client) RemoveMembers(ctx context.Context, groupID string, userIDs []string) ([]string, error) {
	return c.patchMembers(ctx, OpRemoveMembers, "remove", groupID, userIDs)
}

func (c *Client) patchMembers(ctx context.Context, op, verb, groupID string, userIDs []string) ([]string, error) {
	if groupID == "" {
		return nil, fmt.Errorf("%s members: group: %w", verb, errEmptyID)
	}
	ids, err := uniqueIDs(userIDs)
	if err != nil {
		return nil, fmt.Errorf("%s members of group %s: %w", verb, groupID, err)
	}
	var reqIDs []string
	for start := 0; start < len(ids); start += MaxMembersPerRequest {
		chunk := ids[start:min(len(ids), start+MaxMembersPerRequest)]
		body := patchBody{Schemas: []string{schemaPatch}, Operations: []patchOperation{{Op: verb, Path: "members", Value: refs(chunk)}}}
		res, err := c.do(ctx, call{op: op, method: http.MethodPatch, path: groupPath(groupID), body: body, members: len(chunk)})
		if err != nil {
			return reqIDs, fmt.Errorf("%s members %d-%d of %d to group %s: %w", verb, start+1, start+len(chunk), len(ids), groupID, err)
		}
		reqIDs = append(reqIDs, res.requestID)
	}
	return reqIDs, nil
}

// RenameGroup replaces the group's displayName.
func (c *Client) RenameGroup(ctx context.Context, id, name string) error {
	if id == "" {
		return fmt.Errorf("rename group: %w", errEmptyID)
	}
	if name == "" {
		return fmt.Errorf("rename group %s: empty displayName", id)
	}
	body := patchBody{Schemas: []string{schemaPatch}, Operations: []patchOperation{{Op: "replace", Path: "displayName", Value: name}}}
	if _, err := c.do(ctx, call{op: OpRenameGroup, method: http.MethodPatch, path: groupPath(id), body: body}); err != nil {
		return fmt.Errorf("rename group %s: %w", id, err)
	}
	return nil
}

// SetGroupExternalID replaces the group's externalId (AWS allows displayName, members and
// externalId in a PatchGroup request: docs.aws.amazon.com/singlesignon/latest/developerguide/patchgroup.html).
// This project uses it to adopt a group that has none yet: externalId = Okta group id.
func (c *Client) SetGroupExternalID(ctx context.Context, id, externalID string) error {
	if id == "" {
		return fmt.Errorf("set group externalId: %w", errEmptyID)
	}
	if externalID == "" {
		return fmt.Errorf("set group %s externalId: empty value", id)
	}
	body := patchBody{Schemas: []string{schemaPatch}, Operations: []patchOperation{{Op: "replace", Path: "externalId", Value: externalID}}}
	if _, err := c.do(ctx, call{op: OpSetGroupExternalID, method: http.MethodPatch, path: groupPath(id), body: body}); err != nil {
		return fmt.Errorf("set group %s externalId: %w", id, err)
	}
	return nil
}

// uniqueIDs drops duplicates (keeping first occurrences in order) and rejects empty ids, which
// would turn into a member value AWS rejects.
func uniqueIDs(ids []string) ([]string, error) {
	seen := make(map[string]struct{}, len(ids))
	out := make([]string, 0, len(ids))
	for i, id := range ids {
		if id == "" {
			return nil, fmt.Errorf("user id %d: %w", i, errEmptyID)
		}
		if _, dup := seen[id]; dup {
			continue
		}
		seen[id] = struct{}{}
		out = append(out, id)
	}
	return out, nil
}

func refs(ids []string) []memberRef {
	if len(ids) == 0 {
		return nil
	}
	out := make([]memberRef, len(ids))
	for i, id := range ids {
		out[i] = memberRef{Value: id}
	}
	return out
}

package oktatest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

const (
	maxLimit          = 10000
	defaultGroupLimit = 10000
	defaultQueryLimit = 300 // Okta: "the default limit for a query is 300 results"
	defaultUserLimit  = 1000
	userGroupsLimit   = 200 // Okta: limit <= 200, default 200 (List all groups of a user)
	oktaTime          = "2006-01-02T15:04:05.000Z"
)

func (s *Server) listGroups(w http.ResponseWriter, r *http.Request, _ time.Time) int {
	q := r.URL.Query()
	var (
		conds []cond
		err   error
	)
	search, filter := q.Get("search"), q.Get("filter")
	switch {
	case search != "":
		conds, err = parseExpr(search, searchAttrs)
	case filter != "":
		conds, err = parseExpr(filter, filterAttrs)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "E0000031", "Invalid search criteria.", s.errorID())
		return http.StatusBadRequest
	}
	// q is only used when no search/filter is given; it is Okta's auto-complete query and cannot
	// be paged.
	query, isQuery := q.Get("q"), search == "" && filter == "" && q.Has("q")
	def := defaultGroupLimit
	if isQuery {
		def = defaultQueryLimit
	}
	limit, ok := parseLimit(q.Get("limit"), def)
	if !ok {
		writeError(w, http.StatusBadRequest, "E0000001", "Api validation failed: limit", s.errorID())
		return http.StatusBadRequest
	}

	s.mu.Lock()
	var ids []string
	for _, id := range sortedIDs(s.groups) {
		g := s.groups[id]
		if isQuery {
			if hasPrefixFold(g.name, query) {
				ids = append(ids, id)
			}
			continue
		}
		if matchAll(g, conds) {
			ids = append(ids, id)
		}
	}
	var page []string
	var next string
	if isQuery {
		page = ids[:min(limit, len(ids))]
	} else {
		page, next = paginate(ids, q.Get("after"), limit)
	}
	base := baseURL(r)
	stats := expandsStats(q)
	body := make([]groupJSON, 0, len(page))
	for _, id := range page {
		body = append(body, s.groupJSON(base, s.groups[id], stats))
	}
	s.stats.ListGroups++
	s.mu.Unlock()

	writeLinks(w, r, next)
	writeJSON(w, http.StatusOK, body)
	return http.StatusOK
}

func (s *Server) getGroup(w http.ResponseWriter, r *http.Request, _ time.Time) int {
	id := r.PathValue("id")
	s.mu.Lock()
	g, ok := s.groups[id]
	var body groupJSON
	if ok {
		body = s.groupJSON(baseURL(r), g, expandsStats(r.URL.Query()))
		s.stats.GetGroup++
	}
	s.mu.Unlock()
	if !ok {
		return s.groupNotFound(w, id)
	}
	writeJSON(w, http.StatusOK, body)
	return http.StatusOK
}

func (s *Server) groupUsers(w http.ResponseWriter, r *http.Request, _ time.Time) int {
	id := r.PathValue("id")
	q := r.URL.Query()
	limit, ok := parseLimit(q.Get("limit"), defaultUserLimit)
	if !ok {
		writeError(w, http.StatusBadRequest, "E0000001", "Api validation failed: limit", s.errorID())
		return http.StatusBadRequest
	}
	s.mu.Lock()
	g, found := s.groups[id]
	var (
		body []userJSON
		next string
	)
	if found {
		var page []string
		page, next = paginate(s.memberIDs(g), q.Get("after"), limit)
		base := baseURL(r)
		body = make([]userJSON, 0, len(page))
		for _, uid := range page {
			body = append(body, userToJSON(base, s.users[uid]))
		}
		s.stats.GroupUsers++
	}
	s.mu.Unlock()
	if !found {
		return s.groupNotFound(w, id)
	}
	writeLinks(w, r, next)
	writeJSON(w, http.StatusOK, body)
	return http.StatusOK
}

// userGroups lists the groups of a user, in id order, paged like the other listings.
func (s *Server) userGroups(w http.ResponseWriter, r *http.Request, _ time.Time) int {
	id := r.PathValue("id")
	q := r.URL.Query()
	limit, ok := parseLimit(q.Get("limit"), userGroupsLimit)
	if !ok {
		writeError(w, http.StatusBadRequest, "E0000001", "Api validation failed: limit", s.errorID())
		return http.StatusBadRequest
	}
	limit = min(limit, userGroupsLimit)
	s.mu.Lock()
	_, found := s.users[id]
	var (
		body []groupJSON
		next string
	)
	if found {
		var ids []string
		for _, gid := range sortedIDs(s.groups) {
			g := s.groups[gid]
			if _, member := g.members[id]; member || gid == s.everyoneID {
				ids = append(ids, gid)
			}
		}
		var page []string
		page, next = paginate(ids, q.Get("after"), limit)
		base := baseURL(r)
		body = make([]groupJSON, 0, len(page))
		for _, gid := range page {
			body = append(body, s.groupJSON(base, s.groups[gid], false))
		}
		s.stats.UserGroups++
	}
	s.mu.Unlock()
	if !found {
		writeError(w, http.StatusNotFound, "E0000007", "Not found: Resource not found: "+id+" (User)", s.errorID())
		return http.StatusNotFound
	}
	writeLinks(w, r, next)
	writeJSON(w, http.StatusOK, body)
	return http.StatusOK
}

func (s *Server) groupNotFound(w http.ResponseWriter, id string) int {
	writeError(w, http.StatusNotFound, "E0000007", "Not found: Resource not found: "+id+" (UserGroup)", s.errorID())
	return http.StatusNotFound
}

// paginate returns the page after the cursor and the cursor of the next page ("" on the last).
func paginate(ids []string, after string, limit int) (page []string, next string) {
	start := 0
	if after != "" {
		start = sort.SearchStrings(ids, after)
		if start < len(ids) && ids[start] == after {
			start++
		}
	}
	end := min(start+limit, len(ids))
	page = ids[start:end]
	if end < len(ids) && len(page) > 0 {
		next = page[len(page)-1]
	}
	return page, next
}

func parseLimit(v string, def int) (int, bool) {
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, false
	}
	return min(n, maxLimit), true
}

func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// writeLinks sets Okta's paging headers: one Link header per relation, absolute URLs, the next link
// carrying the original query with the new `after` cursor.
func writeLinks(w http.ResponseWriter, r *http.Request, nextAfter string) {
	base := baseURL(r)
	w.Header().Add("Link", "<"+base+r.URL.RequestURI()+`>; rel="self"`)
	if nextAfter == "" {
		return
	}
	q := r.URL.Query()
	q.Set("after", nextAfter)
	u := url.URL{Path: r.URL.Path, RawQuery: q.Encode()}
	w.Header().Add("Link", "<"+base+u.RequestURI()+`>; rel="next"`)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // a client that went away is not the fake's problem
}

type oktaError struct {
	ErrorCode    string              `json:"errorCode"`
	ErrorSummary string              `json:"errorSummary"`
	ErrorLink    string              `json:"errorLink"`
	ErrorID      string              `json:"errorId"`
	ErrorCauses  []map[string]string `json:"errorCauses"`
}

func writeError(w http.ResponseWriter, status int, code, summary, id string) {
	writeJSON(w, status, oktaError{ErrorCode: code, ErrorSummary: summary, ErrorLink: code, ErrorID: id, ErrorCauses: []map[string]string{}})
}

type link struct {
	Href string `json:"href"`
	Name string `json:"name,omitempty"`
	Type string `json:"type,omitempty"`
}

type groupJSON struct {
	ID                    string   `json:"id"`
	Created               string   `json:"created"`
	LastUpdated           string   `json:"lastUpdated"`
	LastMembershipUpdated string   `json:"lastMembershipUpdated"`
	ObjectClass           []string `json:"objectClass"`
	Type                  string   `json:"type"`
	Profile               struct {
		Name        string  `json:"name"`
		Description *string `json:"description"`
	} `json:"profile"`
	Embedded *groupEmbedded `json:"_embedded,omitempty"`
	Links    map[string]any `json:"_links"`
}

// groupEmbedded is what expand=stats adds to a group.
type groupEmbedded struct {
	Stats groupStats `json:"stats"`
}

type groupStats struct {
	UsersCount             int  `json:"usersCount"`
	AppsCount              int  `json:"appsCount"`
	GroupPushMappingsCount int  `json:"groupPushMappingsCount"`
	HasAdminPrivilege      bool `json:"hasAdminPrivilege"`
}

// expandsStats reports whether the request asks for `expand=stats` (Okta takes a comma-separated
// list, e.g. `expand=stats,app`; other values are ignored here).
func expandsStats(q url.Values) bool {
	for _, v := range q["expand"] {
		for _, e := range strings.Split(v, ",") {
			if strings.TrimSpace(e) == "stats" {
				return true
			}
		}
	}
	return false
}

// groupJSON renders a group. With stats, usersCount is the group's real member count at this
// moment, so an injected empty or truncated member page disagrees with it as it would in Okta.
// Caller holds mu.
func (s *Server) groupJSON(base string, g *group, stats bool) groupJSON {
	j := groupJSON{
		ID:                    g.id,
		Created:               g.created.Format(oktaTime),
		LastUpdated:           g.lastUpdated.Format(oktaTime),
		LastMembershipUpdated: g.lastMembershipUpdated.Format(oktaTime),
		ObjectClass:           []string{"okta:user_group"},
		Type:                  g.typ,
	}
	if g.typ == TypeAppGroup {
		j.ObjectClass = []string{"okta:windows_security_principal"}
	}
	j.Profile.Name = g.name
	if g.description != "" {
		d := g.description
		j.Profile.Description = &d
	}
	j.Links = map[string]any{
		"logo": []link{
			{Name: "medium", Href: base + "/assets/img/logos/groups/odyssey/okta-medium.30ce6d4085dff29412984e4c191bc874.png", Type: "image/png"},
			{Name: "large", Href: base + "/assets/img/logos/groups/odyssey/okta-large.c3cb8cda8ae0add1b4fe928f5844dbe3.png", Type: "image/png"},
		},
		"users": link{Href: base + "/api/v1/groups/" + g.id + "/users"},
		"apps":  link{Href: base + "/api/v1/groups/" + g.id + "/apps"},
	}
	if stats {
		j.Embedded = &groupEmbedded{Stats: groupStats{UsersCount: len(s.memberIDs(g))}}
	}
	return j
}

type userJSON struct {
	ID              string  `json:"id"`
	Status          string  `json:"status"`
	Created         string  `json:"created"`
	Activated       *string `json:"activated"`
	StatusChanged   *string `json:"statusChanged"`
	LastLogin       *string `json:"lastLogin"`
	LastUpdated     string  `json:"lastUpdated"`
	PasswordChanged *string `json:"passwordChanged"`
	Type            struct {
		ID string `json:"id"`
	} `json:"type"`
	Profile struct {
		FirstName   string  `json:"firstName"`
		LastName    string  `json:"lastName"`
		MobilePhone *string `json:"mobilePhone"`
		SecondEmail *string `json:"secondEmail"`
		Login       string  `json:"login"`
		Email       string  `json:"email"`
	} `json:"profile"`
	Credentials struct {
		Password struct{} `json:"password"`
		Provider struct {
			Type string `json:"type"`
			Name string `json:"name"`
		} `json:"provider"`
	} `json:"credentials"`
	Links map[string]link `json:"_links"`
}

func userToJSON(base string, u *user) userJSON {
	ts := func(t time.Time) *string { v := t.Format(oktaTime); return &v }
	j := userJSON{
		ID:            u.id,
		Status:        u.status,
		Created:       u.created.Format(oktaTime),
		StatusChanged: ts(u.statusChanged),
		LastUpdated:   u.lastUpdated.Format(oktaTime),
	}
	if u.status != "STAGED" {
		j.Activated = ts(u.activated)
		j.PasswordChanged = ts(u.activated)
	}
	j.Type.ID = "otyf4keUs3rTyp30000"
	j.Profile.FirstName, j.Profile.LastName = u.firstName, u.lastName
	j.Profile.Login, j.Profile.Email = u.login, u.email
	j.Credentials.Provider.Type, j.Credentials.Provider.Name = "OKTA", "OKTA"
	j.Links = map[string]link{"self": {Href: base + "/api/v1/users/" + u.id}}
	return j
}

func hasPrefixFold(s, prefix string) bool {
	return strings.HasPrefix(strings.ToLower(s), strings.ToLower(prefix))
}

package scimtest

import (
	"cmp"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

const (
	schemaUser  = "urn:ietf:params:scim:schemas:core:2.0:User"
	schemaGroup = "urn:ietf:params:scim:schemas:core:2.0:Group"
	schemaList  = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	schemaError = "urn:ietf:params:scim:api:messages:2.0:Error"
	schemaPatch = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
)

// Error details. Where AWS has been seen to send a text, it is that text, with the answer that
// shows it; the others are AWS's documented condition or made up, and say so. Clients must branch
// on the status only: AWS uses one generic 400 text for many different mistakes.
const (
	// Seen for bodies that violate AWS's rules: more than 100 member values in one PATCH
	// (github.com/slashdevops/idp-scim-sync/issues/62), `members eq ""` (…/issues/75), a
	// replace on members with an empty value (github.com/lichti/aws-iam-scim-problem).
	detailInvalid = "Request is unparsable, syntactically incorrect, or violates schema."
	// Seen for a 409 on POST /Users (idp-scim-sync issue 57) and POST /Groups (idp-scim-sync
	// pkg/aws/testdata/CreateGroupResponse_Conflict.json); the text AWS's troubleshooting guide
	// quotes for duplicate users and groups (docs.aws.amazon.com/singlesignon/latest/userguide/
	// troubleshooting.html, "Duplicate user or group error"). A rename onto a taken displayName is
	// assumed to answer the same.
	detailDuplicate = "Refused to create a new, duplicate resource."
	// Seen (github.com/goauthentik/authentik/issues/12321).
	detailPathless = `Current PATCH support allows omitting "path" attribute only for Add and Replace operations modifying a single attribute.`
	// AWS's documented conditions (developer guide, the Errors table of each operation); the
	// bodies have not been seen.
	detailUnauthorized = "The authorization header is invalid or missing."
	detailInternal     = "Service failed to process the request."
	// AWS's ThrottlingException message on its other APIs; a SCIM 429 body has not been seen.
	detailThrottled = "Rate exceeded"
	// The refusals AWS documents for PATCH /Groups answer the generic text: seen for more than 100
	// values and for a replace on members (above), assumed for a remove without values.
	detailTooMany    = detailInvalid
	detailReplaceAll = detailInvalid
	detailRemoveAll  = detailInvalid
	maxBodyBytes     = 1 << 20
)

// validationDetail is the text AWS's troubleshooting guide quotes for a user whose given name is
// empty (docs.aws.amazon.com/singlesignon/latest/userguide/troubleshooting.html, "Specific users
// fail to synchronize"); the emulator uses it for every required name attribute.
func validationDetail(attr string) string {
	return fmt.Sprintf(`2 validation errors detected: Value at '%[1]s' failed to satisfy constraint: Member must satisfy regular expression pattern: [\p{L}\p{M}\p{S}\p{N}\p{P}\t\n\r ]+; Value at '%[1]s' failed to satisfy constraint: Member must have length greater than or equal to 1`, attr)
}

// detailEmails is the text the same guide quotes for a user with more than one email.
const detailEmails = "List attribute emails exceeds allowed limit of 1"

// errorBody is AWS's error shape. AWS repeats the schema URN under a misspelt "schema" key and
// sends status as a string; both are reproduced so clients are tested against them.
type errorBody struct {
	Schema             []string `json:"schema"`
	Schemas            []string `json:"schemas"`
	Detail             string   `json:"detail"`
	Status             string   `json:"status"`
	ExceptionRequestID string   `json:"exceptionRequestId"`
	TimeStamp          string   `json:"timeStamp"`
}

type meta struct {
	ResourceType string `json:"resourceType"`
	Created      string `json:"created"`
	LastModified string `json:"lastModified"`
}

type nameJSON struct {
	FamilyName string `json:"familyName,omitempty"`
	GivenName  string `json:"givenName,omitempty"`
}

type emailJSON struct {
	Value   string `json:"value"`
	Type    string `json:"type,omitempty"`
	Primary bool   `json:"primary"`
}

type userJSON struct {
	ID          string      `json:"id"`
	ExternalID  string      `json:"externalId,omitempty"`
	Meta        meta        `json:"meta"`
	Schemas     []string    `json:"schemas"`
	UserName    string      `json:"userName"`
	Name        *nameJSON   `json:"name,omitempty"`
	DisplayName string      `json:"displayName,omitempty"`
	Active      bool        `json:"active"`
	Emails      []emailJSON `json:"emails,omitempty"`
}

type memberJSON struct {
	Value string `json:"value"`
}

type groupJSON struct {
	ID          string   `json:"id"`
	ExternalID  string   `json:"externalId,omitempty"`
	Meta        meta     `json:"meta"`
	Schemas     []string `json:"schemas"`
	DisplayName string   `json:"displayName"`
	// AWS always answers an empty list: it never returns members on group reads.
	Members []memberJSON `json:"members"`
}

type listJSON struct {
	TotalResults *int     `json:"totalResults,omitempty"`
	ItemsPerPage int      `json:"itemsPerPage"`
	StartIndex   *int     `json:"startIndex,omitempty"`
	NextCursor   string   `json:"nextCursor,omitempty"`
	Schemas      []string `json:"schemas"`
	Resources    []any    `json:"Resources"`
}

const timeFormat = "2006-01-02T15:04:05Z"

func (u *user) json() userJSON {
	j := userJSON{
		ID: u.id, ExternalID: u.externalID,
		Meta:    meta{ResourceType: "User", Created: u.created.Format(timeFormat), LastModified: u.modified.Format(timeFormat)},
		Schemas: []string{schemaUser}, UserName: u.userName, DisplayName: u.displayName, Active: u.active,
	}
	if u.givenName != "" || u.familyName != "" {
		j.Name = &nameJSON{FamilyName: u.familyName, GivenName: u.givenName}
	}
	if u.email != "" {
		j.Emails = []emailJSON{{Value: u.email, Type: "work", Primary: true}}
	}
	return j
}

func (g *group) json() groupJSON {
	return groupJSON{
		ID: g.id, ExternalID: g.externalID,
		Meta:    meta{ResourceType: "Group", Created: g.created.Format(timeFormat), LastModified: g.modified.Format(timeFormat)},
		Schemas: []string{schemaGroup}, DisplayName: g.displayName, Members: []memberJSON{},
	}
}

// apiError is an error answer decided while holding the lock, written after releasing it.
type apiError struct {
	status     int
	detail     string
	retryAfter string
}

func errInvalid(detail string) *apiError {
	if detail == "" {
		detail = detailInvalid
	}
	return &apiError{status: http.StatusBadRequest, detail: detail}
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rel, inBase := strings.CutPrefix(r.URL.Path, s.basePath)
	if !inBase || (rel != "" && !strings.HasPrefix(rel, "/")) {
		rel = "" // outside the tenant: AWS answers 401 for a wrong tenant id
	}
	route, id := routeOf(r.Method, rel)

	s.mu.Lock()
	s.requests[route]++
	s.total++
	if r.Method != http.MethodGet {
		s.writes++
	}
	latency := s.faults.Latency
	s.mu.Unlock()

	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-r.Context().Done():
			t.Stop()
			return
		case <-t.C:
		}
	}

	if !inBase || !s.authorized(r) {
		s.writeError(w, &apiError{status: http.StatusUnauthorized, detail: detailUnauthorized})
		return
	}
	if e := s.limitRequest(route); e != nil {
		s.writeError(w, e)
		return
	}
	if f := s.fault(route, r); f != nil {
		s.writeError(w, f)
		return
	}
	if !s.hold(r, route, id) {
		return
	}

	switch route {
	case "GET /Users":
		s.listUsers(w, r)
	case "POST /Users":
		s.createUser(w, r)
	case "GET /Users/{id}":
		s.getUser(w, id)
	case "GET /Groups":
		s.listGroups(w, r)
	case "POST /Groups":
		s.createGroup(w, r)
	case "GET /Groups/{id}":
		s.getGroup(w, id)
	case "PATCH /Groups/{id}":
		s.patchGroup(w, r, id)
	case "DELETE /Groups/{id}":
		s.deleteGroup(w, id)
	default:
		if strings.HasSuffix(route, " /Users") || strings.HasSuffix(route, "/{id}") || strings.HasSuffix(route, " /Groups") {
			s.writeError(w, &apiError{status: http.StatusMethodNotAllowed, detail: "Method not allowed."})
			return
		}
		s.writeError(w, &apiError{status: http.StatusNotFound, detail: "Unknown path."})
	}
}

// routeOf maps a method and a path below the base path to a route key and the resource id.
func routeOf(method, rel string) (route, id string) {
	parts := strings.Split(strings.Trim(rel, "/"), "/")
	switch {
	case len(parts) == 1 && (parts[0] == "Users" || parts[0] == "Groups"):
		return method + " /" + parts[0], ""
	case len(parts) == 2 && (parts[0] == "Users" || parts[0] == "Groups") && parts[1] != "":
		return method + " /" + parts[0] + "/{id}", parts[1]
	}
	return method + " /other", ""
}

func (s *Server) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	s.mu.Lock()
	want, expired := s.token, s.expired
	s.mu.Unlock()
	return !expired && subtle.ConstantTimeCompare([]byte(tok), []byte(want)) == 1
}

// fault picks the fault for this request, if any: scripted first, then the hook, then random.
func (s *Server) fault(route string, r *http.Request) *apiError {
	s.mu.Lock()
	for i, f := range s.script {
		if f.Route == "" || f.Route == route {
			s.script = append(s.script[:i:i], s.script[i+1:]...)
			s.mu.Unlock()
			return faultError(f)
		}
	}
	hook := s.faultFunc
	s.mu.Unlock()
	if hook != nil {
		if f := hook(route, r); f != nil {
			return faultError(*f)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fz := s.faults
	if fz.ThrottleRate <= 0 && fz.ErrorRate <= 0 {
		return nil
	}
	// One draw per request keeps the fault sequence a pure function of the seed.
	p := s.faultRand.Float64()
	switch {
	case p < fz.ThrottleRate:
		return &apiError{status: http.StatusTooManyRequests, detail: detailThrottled, retryAfter: fz.RetryAfter}
	case p < fz.ThrottleRate+fz.ErrorRate:
		return &apiError{status: http.StatusInternalServerError, detail: detailInternal}
	}
	return nil
}

func faultError(f Fault) *apiError {
	detail := http.StatusText(f.Status)
	switch f.Status {
	case http.StatusTooManyRequests:
		detail = detailThrottled
	case http.StatusInternalServerError:
		detail = detailInternal
	case http.StatusBadRequest:
		detail = detailInvalid
	}
	return &apiError{status: f.Status, detail: detail, retryAfter: f.RetryAfter}
}

func (s *Server) requestID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, b := s.idRand.Uint64(), s.idRand.Uint64()
	return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", uint32(a>>32), uint16(a>>16), uint16(a)&0x0fff, (uint16(b>>48)&0x3fff)|0x8000, b&0xffffffffffff)
}

func (s *Server) writeError(w http.ResponseWriter, e *apiError) {
	s.mu.Lock()
	switch {
	case e.status == http.StatusUnauthorized:
		s.unauthorized++
	case e.status == http.StatusTooManyRequests:
		s.throttled++
	case e.status >= 500:
		s.serverErrors++
	}
	s.mu.Unlock()
	id := s.requestID()
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("x-amzn-RequestId", id)
	if e.retryAfter != "" {
		h.Set("Retry-After", e.retryAfter)
	}
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(errorBody{
		Schema: []string{schemaError}, Schemas: []string{schemaError},
		Detail: e.detail, Status: strconv.Itoa(e.status), ExceptionRequestID: id,
		TimeStamp: s.now().UTC().Format("2006-01-02 15:04:05.000"),
	})
}

func (s *Server) writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("x-amzn-RequestId", s.requestID())
	w.WriteHeader(status)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}

// --- paging ---

// page is the parsed count/cursor/filter query of a list request.
type page struct {
	filter    string
	hasFilter bool
	count     int
	cursored  bool
	after     uint64 // seq of the last item of the previous page
	hasAfter  bool   // a cursor named that item (not the first page)
}

// parsePage validates the query of GET /Users or /Groups. AWS documents count in [1, 100]
// ("Valid Range"), so anything else is a ValidationException; parameters AWS lists as
// unsupported (startIndex, attributes, excludedAttributes) are rejected too.
func parsePage(r *http.Request) (page, *apiError) {
	q := r.URL.Query()
	p := page{count: MaxPageSize}
	for k, vs := range q {
		if len(vs) != 1 {
			return p, errInvalid("")
		}
		v := vs[0]
		switch k {
		case "filter":
			p.filter, p.hasFilter = v, true
		case "count":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > MaxPageSize {
				return p, errInvalid("count must be between 1 and 100.")
			}
			p.count = n
		case "cursor":
			p.cursored = true
			if v != "" {
				seq, ok := decodeCursor(v)
				if !ok {
					return p, errInvalid("Invalid cursor.")
				}
				p.after, p.hasAfter = seq, true
			}
		default:
			return p, errInvalid("")
		}
	}
	return p, nil
}

func encodeCursor(seq uint64) string {
	return base64.StdEncoding.EncodeToString([]byte("scimtest:" + strconv.FormatUint(seq, 10)))
}

func decodeCursor(c string) (uint64, bool) {
	b, err := base64.StdEncoding.DecodeString(c)
	if err != nil {
		return 0, false
	}
	n, ok := strings.CutPrefix(string(b), "scimtest:")
	if !ok {
		return 0, false
	}
	seq, err := strconv.ParseUint(n, 10, 64)
	return seq, err == nil
}

// paginate cuts one page (the caller holds s.mu) out of items (sorted by seq) and shapes the list response. With a
// cursor the answer has itemsPerPage and nextCursor; without, AWS's older non-paginated shape
// with totalResults and startIndex (first count items only).
func paginate[T any](s *Server, p page, items []T, seqOf func(T) uint64, render func(T) any) listJSON {
	resp := listJSON{Schemas: []string{schemaList}, Resources: []any{}}
	if !p.cursored {
		total, one := len(items), 1
		n := min(len(items), p.count)
		for _, it := range items[:n] {
			resp.Resources = append(resp.Resources, render(it))
		}
		resp.TotalResults, resp.StartIndex, resp.ItemsPerPage = &total, &one, n
		return resp
	}
	start := 0
	if p.hasAfter {
		start = sort.Search(len(items), func(i int) bool { return seqOf(items[i]) > p.after })
	}
	n := p.count
	if s.uneven && n > 1 {
		n = 1 + s.faultRand.IntN(n)
	}
	end := min(len(items), start+n)
	for _, it := range items[start:end] {
		resp.Resources = append(resp.Resources, render(it))
	}
	resp.ItemsPerPage = end - start
	if end < len(items) {
		resp.NextCursor = encodeCursor(seqOf(items[end-1]))
	}
	return resp
}

// --- users ---

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	p, aerr := parsePage(r)
	if aerr != nil {
		s.writeError(w, aerr)
		return
	}
	var f userFilter
	if p.hasFilter {
		var err error
		if f, err = parseUserFilter(p.filter); err != nil {
			s.writeError(w, errInvalid(""))
			return
		}
	}
	s.mu.Lock()
	var items []*user
	switch {
	case f.hasUserName:
		// Case-insensitive, every match in creation order: AWS does not document how it compares
		// userName, and this is the reading under which a client that trusts the filter links the
		// wrong user (doc.go).
		items = s.byUserFold[strings.ToLower(f.userName)]
	case f.hasExternalID:
		for _, u := range s.userOrder {
			if u.externalID == f.externalID {
				items = append(items, u)
			}
		}
	case f.hasID:
		if u := s.users[f.id]; u != nil {
			items = []*user{u}
		}
	case f.hasGroup:
		// An unknown group id yields an empty list (AWS behaviour not documented).
		if g := s.groups[f.groupID]; g != nil {
			items = s.sortedMembersLocked(g)
		}
	default:
		items = s.userOrder
	}
	resp := paginate(s, p, items, func(u *user) uint64 { return u.seq }, func(u *user) any { return u.json() })
	s.mu.Unlock()
	s.writeJSON(w, http.StatusOK, resp)
}

func (s *Server) getUser(w http.ResponseWriter, id string) {
	s.mu.Lock()
	u := s.users[id]
	var j userJSON
	if u != nil {
		j = u.json()
	}
	s.mu.Unlock()
	if u == nil {
		s.writeError(w, &apiError{status: http.StatusNotFound, detail: fmt.Sprintf("User %s not found.", id)})
		return
	}
	s.writeJSON(w, http.StatusOK, j)
}

type createUserReq struct {
	UserName    string `json:"userName"`
	ExternalID  string `json:"externalId"`
	DisplayName string `json:"displayName"`
	Name        struct {
		GivenName  string `json:"givenName"`
		FamilyName string `json:"familyName"`
	} `json:"name"`
	Active *bool       `json:"active"`
	Emails []emailJSON `json:"emails"`
	Groups any         `json:"groups"`
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request) {
	var req createUserReq
	if err := decodeBody(r, &req); err != nil {
		s.writeError(w, errInvalid(""))
		return
	}
	// AWS: givenName, familyName, userName and displayName are required; groups may not be set;
	// multi-valued attributes hold at most one value, and the email must be primary.
	switch {
	case req.Name.GivenName == "":
		s.writeError(w, errInvalid(validationDetail("name.givenName")))
		return
	case req.Name.FamilyName == "":
		s.writeError(w, errInvalid(validationDetail("name.familyName")))
		return
	case req.DisplayName == "":
		s.writeError(w, errInvalid(validationDetail("displayName")))
		return
	case len(req.Emails) > 1:
		s.writeError(w, errInvalid(detailEmails))
		return
	case req.UserName == "" || req.Groups != nil || (len(req.Emails) == 1 && !req.Emails[0].Primary):
		s.writeError(w, errInvalid(""))
		return
	}
	active := req.Active == nil || *req.Active
	email := ""
	if len(req.Emails) == 1 {
		email = req.Emails[0].Value
	}
	s.mu.Lock()
	u, err := s.addUserLocked(req.UserName, req.ExternalID, req.DisplayName, req.Name.GivenName, req.Name.FamilyName, email, active)
	var j userJSON
	if err == nil {
		j = u.json()
	}
	s.mu.Unlock()
	if err != nil {
		s.writeError(w, &apiError{status: http.StatusConflict, detail: detailDuplicate})
		return
	}
	s.writeJSON(w, http.StatusCreated, j)
}

// --- groups ---

func (s *Server) listGroups(w http.ResponseWriter, r *http.Request) {
	p, aerr := parsePage(r)
	if aerr != nil {
		s.writeError(w, aerr)
		return
	}
	var f groupFilter
	if p.hasFilter {
		var err error
		if f, err = parseGroupFilter(p.filter); err != nil {
			s.writeError(w, errInvalid(""))
			return
		}
	}
	s.mu.Lock()
	var items []*group
	switch {
	case f.hasMemberValue:
		// AWS documents a 404 ResourceNotFoundException "when filter querying with a nonexisting
		// member" (ListGroups, Errors); the detail text is made up, no such body has been seen.
		if s.users[f.memberValue] == nil {
			s.mu.Unlock()
			s.writeError(w, &apiError{status: http.StatusNotFound, detail: fmt.Sprintf("User %s not found.", f.memberValue)})
			return
		}
		for _, g := range s.groupOrder {
			if _, in := g.members[f.memberValue]; in {
				items = append(items, g)
			}
		}
	case f.hasDisplayName:
		if g := s.byGroupNm[f.displayName]; g != nil {
			items = []*group{g}
		}
	case f.hasExternalID:
		for _, g := range s.groupOrder {
			if g.externalID == f.externalID {
				items = append(items, g)
			}
		}
	case f.hasID:
		if g := s.groups[f.id]; g != nil {
			if _, in := g.members[f.member]; !f.hasMember || in {
				items = []*group{g}
			}
		}
	default:
		items = s.groupOrder
	}
	seqOf := func(g *group) uint64 { return g.seq }
	if s.groupOrder0 != 0 {
		// A seeded order (Options.GroupOrderSeed): the key is a bijection of seq, so keys stay
		// unique and cursors keep working.
		seqOf = func(g *group) uint64 { return mix64(g.seq ^ s.groupOrder0) }
		items = slices.Clone(items)
		slices.SortFunc(items, func(a, b *group) int { return cmp.Compare(seqOf(a), seqOf(b)) })
	}
	resp := paginate(s, p, items, seqOf, func(g *group) any { return g.json() })
	s.mu.Unlock()
	s.writeJSON(w, http.StatusOK, resp)
}

// mix64 is splitmix64's finalizer, a bijection on uint64.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

func (s *Server) getGroup(w http.ResponseWriter, id string) {
	s.mu.Lock()
	g := s.groups[id]
	var j groupJSON
	if g != nil {
		j = g.json()
	}
	s.mu.Unlock()
	if g == nil {
		s.writeError(w, &apiError{status: http.StatusNotFound, detail: fmt.Sprintf("Group %s not found.", id)})
		return
	}
	s.writeJSON(w, http.StatusOK, j)
}

type createGroupReq struct {
	DisplayName string `json:"displayName"`
	ExternalID  string `json:"externalId"`
	Members     []struct {
		Value string `json:"value"`
	} `json:"members"`
}

func (s *Server) createGroup(w http.ResponseWriter, r *http.Request) {
	var req createGroupReq
	if err := decodeBody(r, &req); err != nil || req.DisplayName == "" {
		s.writeError(w, errInvalid(""))
		return
	}
	s.mu.Lock()
	s.maxPatchValues = max(s.maxPatchValues, len(req.Members))
	aerr := func() *apiError {
		if len(req.Members) > MaxMemberValues {
			return errInvalid(detailTooMany)
		}
		for _, m := range req.Members {
			if s.users[m.Value] == nil {
				return &apiError{status: s.unknownCode, detail: fmt.Sprintf("User %s not found.", m.Value)}
			}
		}
		if _, dup := s.byGroupNm[req.DisplayName]; dup {
			return nil // the 409 below; no membership operation happens
		}
		return s.limitMembersLocked(len(req.Members))
	}()
	var j groupJSON
	if aerr == nil {
		g, err := s.addGroupLocked(req.DisplayName, req.ExternalID)
		if err != nil {
			aerr = &apiError{status: http.StatusConflict, detail: detailDuplicate}
		} else {
			for _, m := range req.Members {
				g.members[m.Value] = struct{}{}
				s.users[m.Value].groups[g.id] = struct{}{}
			}
			j = g.json()
		}
	}
	s.mu.Unlock()
	if aerr != nil {
		s.writeError(w, aerr)
		return
	}
	s.writeJSON(w, http.StatusCreated, j)
}

func (s *Server) deleteGroup(w http.ResponseWriter, id string) {
	s.mu.Lock()
	g := s.groups[id]
	if g != nil {
		for uid := range g.members {
			delete(s.users[uid].groups, id)
		}
		delete(s.groups, id)
		delete(s.byGroupNm, g.displayName)
		for i, o := range s.groupOrder {
			if o == g {
				s.groupOrder = append(s.groupOrder[:i:i], s.groupOrder[i+1:]...)
				break
			}
		}
	}
	s.mu.Unlock()
	if g == nil {
		s.writeError(w, &apiError{status: http.StatusNotFound, detail: fmt.Sprintf("Group %s not found.", id)})
		return
	}
	s.writeJSON(w, http.StatusNoContent, nil)
}

func decodeBody(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes))
	if err != nil {
		return err
	}
	return json.Unmarshal(body, v)
}

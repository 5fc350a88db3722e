package scimtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
)

type patchReq struct {
	Schemas    []string  `json:"schemas"`
	Operations []patchOp `json:"Operations"`
}

type patchOp struct {
	Op    string          `json:"op"`
	Path  *string         `json:"path"`
	Value json.RawMessage `json:"value"`
}

// action is one validated PATCH operation.
type action struct {
	kind  string // "add", "remove", "removeAll", "displayName", "externalId"
	ids   []string
	value string
}

// patchGroup implements PATCH /Groups/{id} with AWS's rules: only members, displayName and
// externalId; add/remove on members with at most 100 values in the whole request; no replace
// of members; the whole request is validated before anything changes.
func (s *Server) patchGroup(w http.ResponseWriter, r *http.Request, id string) {
	var req patchReq
	if err := decodeBody(r, &req); err != nil || !slices.Contains(req.Schemas, schemaPatch) || len(req.Operations) == 0 {
		s.writeError(w, errInvalid(""))
		return
	}
	actions, aerr := parseOps(req.Operations, id)
	if aerr != nil {
		s.writeError(w, aerr)
		return
	}
	s.mu.Lock()
	aerr = s.applyLocked(id, actions)
	s.mu.Unlock()
	if aerr != nil {
		s.writeError(w, aerr)
		return
	}
	s.writeJSON(w, http.StatusNoContent, nil)
}

func parseOps(ops []patchOp, groupID string) ([]action, *apiError) {
	var out []action
	for _, op := range ops {
		verb := strings.ToLower(op.Op)
		if verb != "add" && verb != "remove" && verb != "replace" {
			return nil, errInvalid("")
		}
		if op.Path == nil {
			// Path-less form, as in AWS's rename example: {"op":"replace","value":{"id":…,"displayName":…}}.
			if verb == "remove" {
				return nil, errInvalid(detailPathless)
			}
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(op.Value, &obj); err != nil || obj == nil {
				return nil, errInvalid("")
			}
			if raw, ok := obj["id"]; ok {
				var v string
				if json.Unmarshal(raw, &v) != nil || v != groupID {
					return nil, errInvalid("")
				}
				delete(obj, "id")
			}
			if len(obj) != 1 {
				return nil, errInvalid(detailPathless)
			}
			for k, raw := range obj {
				a, aerr := pathAction(verb, k, raw)
				if aerr != nil {
					return nil, aerr
				}
				out = append(out, a)
			}
			continue
		}
		a, aerr := pathAction(verb, *op.Path, op.Value)
		if aerr != nil {
			return nil, aerr
		}
		out = append(out, a)
	}
	return out, nil
}

func pathAction(verb, path string, raw json.RawMessage) (action, *apiError) {
	switch strings.ToLower(path) {
	case "members":
		ids, err := memberValues(raw)
		if err != nil {
			return action{}, errInvalid("")
		}
		switch verb {
		case "replace":
			return action{}, errInvalid(detailReplaceAll)
		case "add":
			if len(ids) == 0 {
				return action{}, errInvalid("")
			}
			return action{kind: "add", ids: ids}, nil
		default:
			if len(ids) == 0 {
				return action{kind: "removeAll"}, nil
			}
			return action{kind: "remove", ids: ids}, nil
		}
	case "displayname":
		var v string
		if verb == "remove" || json.Unmarshal(raw, &v) != nil || v == "" {
			return action{}, errInvalid("")
		}
		return action{kind: "displayName", value: v}, nil
	case "externalid":
		if verb == "remove" {
			return action{kind: "externalId"}, nil
		}
		var v string
		if json.Unmarshal(raw, &v) != nil {
			return action{}, errInvalid("")
		}
		return action{kind: "externalId", value: v}, nil
	}
	// Anything else, including RFC 7644 filter paths such as members[value eq "x"], which AWS
	// does not document.
	return action{}, errInvalid("")
}

// memberValues decodes [{"value":"id"},…]; absent, null and [] are all "no values".
func memberValues(raw json.RawMessage) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var vs []struct {
		Value *string `json:"value"`
	}
	if err := json.Unmarshal(raw, &vs); err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(vs))
	for _, v := range vs {
		if v.Value == nil || *v.Value == "" {
			return nil, fmt.Errorf("member without value")
		}
		ids = append(ids, *v.Value)
	}
	return ids, nil
}

func (s *Server) applyLocked(id string, actions []action) *apiError {
	values := 0
	for _, a := range actions {
		values += len(a.ids)
		if a.kind == "removeAll" {
			s.emptyRemoves++
		}
	}
	s.maxPatchValues = max(s.maxPatchValues, values)

	g := s.groups[id]
	if g == nil {
		return &apiError{status: http.StatusNotFound, detail: fmt.Sprintf("Group %s not found.", id)}
	}
	if values > MaxMemberValues {
		return errInvalid(detailTooMany)
	}
	members := maps.Clone(g.members)
	name, ext := g.displayName, g.externalID
	for _, a := range actions {
		switch a.kind {
		case "add":
			for _, uid := range a.ids {
				if s.users[uid] == nil {
					return &apiError{status: s.unknownCode, detail: fmt.Sprintf("User %s not found.", uid)}
				}
				members[uid] = struct{}{}
			}
		case "remove":
			// Removing a non-member is a no-op, not an error.
			for _, uid := range a.ids {
				delete(members, uid)
			}
		case "removeAll":
			if s.emptyRemove == EmptyRemoveRejected {
				return errInvalid(detailRemoveAll)
			}
			clear(members)
		case "displayName":
			if o, dup := s.byGroupNm[a.value]; dup && o != g {
				return &apiError{status: http.StatusConflict, detail: detailDuplicate}
			}
			name = a.value
		case "externalId":
			ext = a.value
		}
	}
	// Validated: the membership operations are charged now, and a 429 leaves the group as it was.
	if aerr := s.limitMembersLocked(values); aerr != nil {
		return aerr
	}
	for uid := range g.members {
		if _, keep := members[uid]; !keep {
			delete(s.users[uid].groups, id)
		}
	}
	for uid := range members {
		s.users[uid].groups[id] = struct{}{}
	}
	g.members = members
	g.sorted = nil
	if name != g.displayName {
		delete(s.byGroupNm, g.displayName)
		s.byGroupNm[name] = g
		g.displayName = name
	}
	g.externalID = ext
	g.modified = s.now().UTC()
	return nil
}

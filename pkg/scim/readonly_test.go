package scim

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim/scimtest"
)

// writeOps are the Client methods that change AWS; every other method is a read.
var writeOps = map[string]bool{
	"CreateGroup": true, "DeleteGroup": true, "AddMembers": true, "RemoveMembers": true,
	"RenameGroup": true, "SetGroupExternalID": true,
}

// TestReadOnlyCoversClient: the read-only client offers every method of Client (so it fits every
// consumer's interface), and a method added to Client later must be added to it (and to API),
// classified as read or write here.
func TestReadOnlyCoversClient(t *testing.T) {
	ct, rt := reflect.TypeOf(&Client{}), reflect.TypeOf(&ReadOnly{})
	for i := range ct.NumMethod() {
		m := ct.Method(i)
		if _, ok := rt.MethodByName(m.Name); !ok {
			t.Errorf("ReadOnly lacks Client.%s", m.Name)
		}
		if _, ok := reflect.TypeOf((*API)(nil)).Elem().MethodByName(m.Name); !ok {
			t.Errorf("API lacks Client.%s", m.Name)
		}
	}
}

// TestReadOnlySendsNoWrite calls every method of the read-only client with plausible arguments:
// writes return ErrReadOnly and are counted, reads reach the emulator, and the emulator sees no
// request other than GET.
func TestReadOnlySendsNoWrite(t *testing.T) {
	f := newFixture(t, scimtest.Options{})
	uid := f.srv.AddUser("ann@example.com", "00uA")
	gid := f.srv.AddGroup("AWS_Admins", "00gA")
	f.srv.AddMember(gid, uid)
	ro := ReadOnlyOf(f.c)
	if ReadOnlyOf(ro) != ro || !IsReadOnly(ro) || IsReadOnly(f.c) {
		t.Fatal("ReadOnlyOf/IsReadOnly")
	}
	ctx := context.Background()
	args := map[reflect.Type]reflect.Value{
		reflect.TypeOf((*context.Context)(nil)).Elem(): reflect.ValueOf(ctx),
		reflect.TypeOf(""):         reflect.ValueOf(gid),
		reflect.TypeOf([]string{}): reflect.ValueOf([]string{uid}),
		reflect.TypeOf(Group{}):    reflect.ValueOf(Group{DisplayName: "AWS_New", ExternalID: "00gN"}),
	}
	v := reflect.ValueOf(ro)
	writes := 0
	for i := range v.NumMethod() {
		m := v.Type().Method(i)
		if m.Name == "Refused" || m.Name == "RefusedTotal" || m.Name == "ReadOnly" {
			continue
		}
		in := make([]reflect.Value, m.Type.NumIn()-1)
		for j := range in {
			at := m.Type.In(j + 1)
			a, ok := args[at]
			if !ok && at.Kind() == reflect.Func {
				// A page callback: returns a nil error.
				a = reflect.MakeFunc(at, func([]reflect.Value) []reflect.Value {
					return []reflect.Value{reflect.Zero(at.Out(0))}
				})
				ok = true
			}
			if !ok {
				t.Fatalf("%s: no argument for %s", m.Name, at)
			}
			in[j] = a
		}
		out := v.Method(i).Call(in)
		var err error
		if last := out[len(out)-1]; last.Type() == reflect.TypeOf((*error)(nil)).Elem() && !last.IsNil() {
			err = last.Interface().(error)
		}
		if writeOps[m.Name] {
			writes++
			if !errors.Is(err, ErrReadOnly) {
				t.Errorf("%s: err %v, want ErrReadOnly", m.Name, err)
			}
		} else if errors.Is(err, ErrReadOnly) {
			t.Errorf("read %s refused", m.Name)
		}
	}
	if writes != len(writeOps) {
		t.Errorf("%d write methods called, want %d", writes, len(writeOps))
	}
	if n := f.srv.Writes(); n != 0 {
		t.Errorf("emulator saw %d writes: %v", n, f.srv.Requests())
	}
	if f.srv.TotalRequests() == 0 {
		t.Error("reads did not reach the emulator")
	}
	if ro.RefusedTotal() != int64(len(writeOps)) || ro.Refused()[OpSetGroupExternalID] != 1 {
		t.Errorf("refused %v", ro.Refused())
	}
	if got := f.srv.Members(gid); len(got) != 1 {
		t.Errorf("members %v", got)
	}
	if g := f.srv.Groups(); len(g) != 1 || g[0].ExternalID != "00gA" || !strings.HasPrefix(g[0].DisplayName, "AWS_Admins") {
		t.Errorf("groups %v", g)
	}
}

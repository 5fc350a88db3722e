package oktatest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// Event is one System Log event as an event hook delivers it, reduced to what okta-aws-sso-sync
// reads: uuid, eventType, published (whole milliseconds, as the System Log has them) and the
// User and UserGroup targets (a membership event has both, a rename or group delete only the
// group, a user lifecycle event only the user).
type Event struct {
	UUID, Type         string
	Published          time.Time
	UserID, Login      string
	GroupID, GroupName string
}

// GenOptions shape a Generator. Zero values take the defaults noted.
type GenOptions struct {
	Seed     uint64
	Users    int       // default 6: gen0@example.com, gen1@…, all ACTIVE
	Groups   int       // default 5
	Selected string    // name prefix of the first Groups-1 groups; default "AWS_"
	Other    string    // name prefix of the last group and of renames out of the selection; default "Team_"
	Start    time.Time // published time before the first event; default an hour before now
}

// GenUser and GenGroup are what a Generator seeded.
type GenUser struct{ ID, Login string }

type GenGroup struct {
	ID, Name string
	Deleted  bool
	index    int
	version  int // names are never reused: <prefix>G<index>_v<version>
}

// Generator applies seeded random operations to a Server, as an Okta admin would make them, and
// returns the System Log event Okta logs for each. Only moves Okta allows are made (the lifecycle
// rules of lifecycle.go; an add of a member or a remove of a non-member changes nothing and logs
// nothing, so it is not made). As in Okta, a deactivated or suspended user keeps its memberships
// and no removes are logged for them; an admin may still add a deactivated user (undocumented by
// Okta; issue 19 reports that Okta accepts it). A seed gives the same operations and events on a
// new Server every time.
type Generator struct {
	s      *Server
	o      GenOptions
	rnd    *rand.Rand
	users  []GenUser
	groups []*GenGroup
	now    time.Time
	events []Event
	log    []string
}

// NewGenerator seeds s with the users and groups of o, each user in each group with
// probability ½.
func NewGenerator(s *Server, o GenOptions) *Generator {
	if o.Users == 0 {
		o.Users = 6
	}
	if o.Groups == 0 {
		o.Groups = 5
	}
	if o.Selected == "" {
		o.Selected = "AWS_"
	}
	if o.Other == "" {
		o.Other = "Team_"
	}
	if o.Start.IsZero() {
		o.Start = time.Now().Add(-time.Hour)
	}
	g := &Generator{s: s, o: o, rnd: rand.New(rand.NewPCG(o.Seed, 0x6e6e)), now: o.Start.UTC().Truncate(time.Millisecond)}
	for i := range o.Users {
		login := fmt.Sprintf("gen%d@example.com", i)
		g.users = append(g.users, GenUser{ID: s.AddUser(login), Login: login})
	}
	for i := range o.Groups {
		prefix := o.Selected
		if i == o.Groups-1 {
			prefix = o.Other
		}
		name := fmt.Sprintf("%sG%d_v0", prefix, i)
		gr := &GenGroup{ID: s.AddGroup(name), Name: name, index: i}
		g.groups = append(g.groups, gr)
		for _, u := range g.users {
			if g.rnd.IntN(2) == 0 {
				g.must(s.AddMember(gr.ID, u.ID))
			}
		}
	}
	return g
}

// Users returns the seeded users.
func (g *Generator) Users() []GenUser { return slices.Clone(g.users) }

// Groups returns the seeded groups as they are now (current name, deleted or not).
func (g *Generator) Groups() []GenGroup {
	out := make([]GenGroup, len(g.groups))
	for i, gr := range g.groups {
		out[i] = *gr
	}
	return out
}

// Events returns the events of every operation so far, in published order.
func (g *Generator) Events() []Event { return slices.Clone(g.events) }

// Log returns one line per operation so far ("<published> <uuid prefix> <what>").
func (g *Generator) Log() []string { return slices.Clone(g.log) }

// Rand is the generator's seeded source, for a caller that draws more (e.g. how the events are
// delivered) from the same seed.
func (g *Generator) Rand() *rand.Rand { return g.rnd }

// UUID returns a new version-1-shaped uuid, as Okta's event uuids and hook eventIds are.
func (g *Generator) UUID() string {
	return fmt.Sprintf("%08x-%04x-11f0-%04x-%012x", g.rnd.Uint32(), g.rnd.IntN(1<<16), 0x8000|g.rnd.IntN(1<<14), g.rnd.Uint64()&(1<<48-1))
}

// must panics on an error: every operation is chosen so that the Server allows it, so an error
// is a bug of the generator.
func (g *Generator) must(err error) {
	if err != nil {
		panic(fmt.Sprintf("oktatest: generator: %v", err))
	}
}

func (g *Generator) emit(e Event, desc string) Event {
	// 1 ms to 2 s after the previous event.
	g.now = g.now.Add(time.Duration(1+g.rnd.IntN(2000)) * time.Millisecond)
	e.UUID, e.Published = g.UUID(), g.now
	g.events = append(g.events, e)
	g.log = append(g.log, fmt.Sprintf("%s %s %s", e.Published.Format("15:04:05.000"), e.UUID[:8], desc))
	return e
}

func (g *Generator) status(u GenUser) string {
	st, err := g.s.UserStatus(u.ID)
	g.must(err)
	return st
}

func (g *Generator) isMember(gr *GenGroup, u GenUser) bool {
	ids, err := g.s.Members(gr.ID)
	g.must(err)
	return slices.Contains(ids, u.ID)
}

// Step applies one random operation and returns its event. The mix, per draw: add 30 %, remove
// 20 %, rename 10 % (to a name outside the selection 2 times in 5), group delete 3 % (while more
// than 3 groups live), deactivate 14 %, reactivate 12 % (logged as user.lifecycle.activate or
// .reactivate, ending ACTIVE or, without a password, PROVISIONED), suspend 6 %, unsuspend 5 %.
// A draw the org does not allow is drawn again.
func (g *Generator) Step() Event {
	for {
		u := g.users[g.rnd.IntN(len(g.users))]
		var live []*GenGroup
		for _, gr := range g.groups {
			if !gr.Deleted {
				live = append(live, gr)
			}
		}
		gr := live[g.rnd.IntN(len(live))]
		member := Event{UserID: u.ID, Login: u.Login, GroupID: gr.ID, GroupName: gr.Name}
		switch op := g.rnd.IntN(100); {
		case op < 30:
			if g.isMember(gr, u) {
				continue
			}
			g.must(g.s.AddMember(gr.ID, u.ID))
			member.Type = "group.user_membership.add"
			return g.emit(member, fmt.Sprintf("add %s to %s (%s, user %s)", u.Login, gr.Name, gr.ID, g.status(u)))
		case op < 50:
			if !g.isMember(gr, u) {
				continue
			}
			g.must(g.s.RemoveMember(gr.ID, u.ID))
			member.Type = "group.user_membership.remove"
			return g.emit(member, fmt.Sprintf("remove %s from %s (%s)", u.Login, gr.Name, gr.ID))
		case op < 60:
			old := gr.Name
			gr.version++
			prefix := g.o.Selected
			if g.rnd.IntN(5) < 2 {
				prefix = g.o.Other
			}
			gr.Name = fmt.Sprintf("%sG%d_v%d", prefix, gr.index, gr.version)
			g.must(g.s.SetGroupName(gr.ID, gr.Name))
			// Okta does not document which name a group.profile.update's UserGroup target
			// carries; either, at random.
			name := old
			if g.rnd.IntN(2) == 0 {
				name = gr.Name
			}
			return g.emit(Event{Type: "group.profile.update", GroupID: gr.ID, GroupName: name},
				fmt.Sprintf("rename %s (%s) to %s, event names %s", old, gr.ID, gr.Name, name))
		case op < 63:
			if len(live) <= 3 {
				continue
			}
			g.must(g.s.DeleteGroup(gr.ID))
			gr.Deleted = true
			return g.emit(Event{Type: "group.lifecycle.delete", GroupID: gr.ID, GroupName: gr.Name}, fmt.Sprintf("delete %s (%s)", gr.Name, gr.ID))
		}
		user := Event{UserID: u.ID, Login: u.Login}
		from := g.status(u)
		switch op := g.rnd.IntN(37); {
		case op < 14:
			if g.s.Deactivate(u.ID) != nil {
				continue
			}
			user.Type = "user.lifecycle.deactivate"
		case op < 26:
			// The System Log says activate for an admin's reactivation, reactivate for an
			// import's (oktahook.EventUserActivate).
			if g.s.Activate(u.ID, g.rnd.IntN(4) != 0) != nil {
				continue
			}
			user.Type = []string{"user.lifecycle.activate", "user.lifecycle.reactivate"}[g.rnd.IntN(2)]
		case op < 32:
			if g.s.Suspend(u.ID) != nil {
				continue
			}
			user.Type = "user.lifecycle.suspend"
		default:
			if g.s.Unsuspend(u.ID) != nil {
				continue
			}
			user.Type = "user.lifecycle.unsuspend"
		}
		return g.emit(user, fmt.Sprintf("%s %s (%s → %s)", user.Type, u.Login, from, g.status(u)))
	}
}

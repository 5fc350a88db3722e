package membership

import (
	"math/rand/v2"
	"time"
)

var t0 = time.Date(2025, 11, 25, 10, 0, 0, 0, time.UTC)

// ch builds a change published ms milliseconds after t0.
func ch(uuid string, ms int, kind Kind, group, user string) Change {
	return Change{
		EventUUID: uuid,
		Published: t0.Add(time.Duration(ms) * time.Millisecond),
		Kind:      kind,
		GroupID:   group,
		UserID:    user,
		Login:     user + "@example.com",
		GroupName: "AWS_" + group,
	}
}

var zones = []*time.Location{time.UTC, time.FixedZone("CET", 3600), time.FixedZone("PST", -8*3600)}

// randomChanges draws n changes from a deliberately small universe, so that equal Published
// times, shared event uuids and several changes per key are common.
func randomChanges(r *rand.Rand, n int) []Change {
	kinds := []Kind{KindAdd, KindRemove, KindAdd, KindRemove, KindRename, KindGroupDelete, KindUserDeactivate, KindUserReactivate}
	out := make([]Change, 0, n)
	for range n {
		k := kinds[r.IntN(len(kinds))]
		c := ch(
			"e"+string(rune('a'+r.IntN(6))),
			r.IntN(4),
			k,
			"g"+string(rune('1'+r.IntN(3))),
			"u"+string(rune('1'+r.IntN(5))),
		)
		if k.User() {
			c.GroupID, c.GroupName = "", ""
		}
		if k == KindRename || k == KindGroupDelete {
			c.UserID, c.Login = "", ""
		}
		if r.IntN(8) == 0 {
			c.Login = "renamed-" + c.Login // same event and key, different payload
		}
		switch r.IntN(40) {
		case 0:
			c.Kind = "bogus"
		case 1:
			c.EventUUID = ""
		case 2:
			c.UserID = ""
		}
		out = append(out, c)
	}
	return out
}

// shuffleDup returns a permutation of cs with random extra copies, each copy's Published
// expressed in a random zone (the same instant, as a redelivery parsed elsewhere would be).
func shuffleDup(r *rand.Rand, cs []Change) []Change {
	out := make([]Change, 0, 2*len(cs))
	for _, c := range cs {
		for range 1 + r.IntN(3) {
			d := c
			d.Published = d.Published.In(zones[r.IntN(len(zones))])
			out = append(out, d)
		}
	}
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

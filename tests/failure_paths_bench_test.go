package tests

import (
	"fmt"
	"testing"
)

// BenchmarkFailurePaths measures the failure-path scenarios end to end (real bootstraps, moto
// FIFO with the template's queue settings, the SCIM emulator): the 400-change workload fault-free
// and under a 50% 429 storm (SCIM requests, drain time, published-to-applied lag), and the
// new-hire race (lag of the waiting change after its user appears, and of its neighbours). One
// iteration is one whole scenario; run with -benchtime 1x (make bench does).
func BenchmarkFailurePaths(b *testing.B) {
	aws := startFaultAWS(b)
	b.Run("storm/faults=none", func(b *testing.B) {
		for i := range b.N {
			r := runStormWorkload(b, aws, fmt.Sprintf("bench-clean-%d", i), 0)
			reportStorm(b, r)
		}
	})
	b.Run("storm/faults=429x50%", func(b *testing.B) {
		for i := range b.N {
			r := runStormWorkload(b, aws, fmt.Sprintf("bench-storm-%d", i), 0.5)
			reportStorm(b, r)
		}
	})
	b.Run("new-hire", func(b *testing.B) {
		for i := range b.N {
			r := runNewHire(b, aws, fmt.Sprintf("bench-newhire-%d", i))
			b.ReportMetric(r.hireLag.Seconds(), "hire-lag-s")
			b.ReportMetric(r.neighbourLag.Seconds(), "neighbour-lag-s")
		}
	})
}

func reportStorm(b *testing.B, r stormRun) {
	b.ReportMetric(float64(r.requests), "scim-requests")
	b.ReportMetric(float64(r.throttled), "throttled")
	b.ReportMetric(r.drain.Seconds(), "drain-s")
	b.ReportMetric(r.lagP50/1000, "lag-p50-s")
	b.ReportMetric(r.lagP99/1000, "lag-p99-s")
}

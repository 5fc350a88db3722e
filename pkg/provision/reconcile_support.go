package provision

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

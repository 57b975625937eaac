package tun

import "slices"

// Uplinks returns the uplinks of the running plan (Up's, with the changes since), for the
// tests of package tun_test.
func (h *Host) Uplinks() []UplinkRoute {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.plan.Uplinks)
}

package framing

import "time"

// TimeUnit is the resolution of the 16-bit send and echo times on the wire.
const TimeUnit = 100 * time.Microsecond

// TimeWrap is the period after which a 16-bit wire time wraps: 2^16 × 100 µs ≈ 6.55 s.
// Differences of wire times are therefore only meaningful below it.
const TimeWrap = 1 << 16 * TimeUnit

// Timestamp returns t as a wire time: the number of whole 100 µs units since epoch,
// modulo 2^16. A t before epoch counts backwards consistently (floor division), so the
// wire time still advances by one every 100 µs across epoch. Use a monotonic epoch, e.g.
// the session's start.
func Timestamp(t, epoch time.Time) uint16 {
	d := t.Sub(epoch)
	units := d / TimeUnit
	if d%TimeUnit < 0 {
		units-- // floor, not truncation toward zero
	}
	return uint16(units)
}

// TimeDelta16 returns how long after the wire time earlier the wire time later is, in
// [0, TimeWrap): the difference is taken modulo 2^16, so it is right across a wrap
// provided the true gap is below [TimeWrap].
func TimeDelta16(later, earlier uint16) time.Duration {
	return time.Duration(later-earlier) * TimeUnit
}

// Duration16 converts a duration to wire units (for a frame's delay field), rounding
// down and saturating at 0 and at 2^16−1 units instead of wrapping, since a delay, unlike
// a clock reading, is not periodic.
func Duration16(d time.Duration) uint16 {
	if d <= 0 {
		return 0
	}
	units := d / TimeUnit
	if units > 0xffff {
		return 0xffff
	}
	return uint16(units)
}

// DurationOf16 converts a delay field in wire units back to a duration.
func DurationOf16(units uint16) time.Duration { return time.Duration(units) * TimeUnit }

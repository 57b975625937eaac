package framing

import "fmt"

// Uplinks is the body of an UPLINKS message (PROTOCOL.md §1 "UPLINKS"): the client's
// uplinks now, in the form of a HELLO's list. A client sends it, only in a session where
// both sides announced [CapUplinks], after its uplinks changed (a reload added one), and
// after each RESUME. The server adds the paths of the uplink ids it has none of; it never
// removes paths for it (a removed uplink's paths are disabled by PATH_STATUS).
type Uplinks struct {
	Uplinks []UplinkInfo // 1..MaxUplinks, ids unique
}

// Append validates u against the limits of PROTOCOL.md §1 and appends its encoding to b:
// 1 byte count M, then M times 1 id, 1 name length N, N bytes of name.
func (u *Uplinks) Append(b []byte) ([]byte, error) {
	if err := validateUplinks("uplinks", u.Uplinks); err != nil {
		return b, err
	}
	return appendUplinks(b, u.Uplinks), nil
}

// ParseUplinks decodes and validates an UPLINKS body.
func ParseUplinks(b []byte) (Uplinks, error) {
	d := decoder{b: b}
	list, err := d.uplinks("uplinks")
	if err != nil {
		return Uplinks{}, err
	}
	if err := d.finish(); err != nil {
		return Uplinks{}, fmt.Errorf("uplinks: %w", err)
	}
	return Uplinks{Uplinks: list}, nil
}

// appendUplinks appends a list of uplinks (HELLO, UPLINKS) to b; it must be valid.
func appendUplinks(b []byte, list []UplinkInfo) []byte {
	b = append(b, byte(len(list)))
	for _, u := range list {
		b = append(b, u.ID, byte(len(u.Name)))
		b = append(b, u.Name...)
	}
	return b
}

// validateUplinks checks a list of uplinks against the limits; what names the message in
// errors.
func validateUplinks(what string, list []UplinkInfo) error {
	if n := len(list); n < 1 || n > MaxUplinks {
		return fmt.Errorf("%s: %d uplinks: %w", what, n, ErrCount)
	}
	var seen idSet
	for _, u := range list {
		if err := seen.add(u.ID); err != nil {
			return fmt.Errorf("%s: uplink %d: %w", what, u.ID, err)
		}
		if err := checkName(u.Name); err != nil {
			return fmt.Errorf("%s: uplink %d: %w", what, u.ID, err)
		}
	}
	return nil
}

// uplinks decodes a list of uplinks (HELLO, UPLINKS). A body that ends early leaves d.err
// set and returns what it read; the caller's finish reports it.
func (d *decoder) uplinks(what string) ([]UplinkInfo, error) {
	nu := int(d.u8())
	if d.err == nil && (nu < 1 || nu > MaxUplinks) {
		return nil, fmt.Errorf("%s: %d uplinks: %w", what, nu, ErrCount)
	}
	var list []UplinkInfo
	var seen idSet
	for i := 0; i < nu && d.err == nil; i++ {
		var u UplinkInfo
		u.ID = d.u8()
		nameLen := int(d.u8())
		if d.err == nil && nameLen > MaxUplinkName {
			return nil, fmt.Errorf("%s: uplink %d: name of %d bytes: %w", what, u.ID, nameLen, ErrTooLong)
		}
		u.Name = string(d.bytes(nameLen))
		if d.err != nil {
			break
		}
		if err := seen.add(u.ID); err != nil {
			return nil, fmt.Errorf("%s: uplink %d: %w", what, u.ID, err)
		}
		if err := checkName(u.Name); err != nil {
			return nil, fmt.Errorf("%s: uplink %d: %w", what, u.ID, err)
		}
		list = append(list, u)
	}
	return list, nil
}

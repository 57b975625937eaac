package framing

import "encoding/binary"

// ResumeLen is the size of a RESUME body.
const ResumeLen = 4

// Resume is the body of a RESUME message: a client that lost its control channel asks, on a
// new authenticated connection, to carry on with an existing session instead of opening a
// new one (PROTOCOL.md §1). The two receiver indexes name the session.
type Resume struct {
	ServerIndex uint16 // the receiver index the client puts in datagrams to the server
	ClientIndex uint16 // the receiver index the server puts in datagrams to the client
}

// Append appends r's encoding to b.
func (r Resume) Append(b []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, r.ServerIndex)
	return binary.BigEndian.AppendUint16(b, r.ClientIndex)
}

// ParseResume decodes a RESUME body, which must be exactly [ResumeLen] bytes.
func ParseResume(b []byte) (Resume, error) {
	switch {
	case len(b) < ResumeLen:
		return Resume{}, ErrShort
	case len(b) > ResumeLen:
		return Resume{}, ErrTrailing
	}
	return Resume{ServerIndex: binary.BigEndian.Uint16(b[0:2]), ClientIndex: binary.BigEndian.Uint16(b[2:4])}, nil
}

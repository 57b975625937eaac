package config

import "fmt"

// ErrorAt returns an error about field placed like the loader's own: at the field's line
// or, when the field is absent, at the line of its nearest present parent. It is for
// checks made outside this package against the host (`bondtun check`), so that their
// findings name the file, line and field too.
func (c *Config) ErrorAt(field, format string, args ...any) *Error {
	return &Error{File: c.Path, Line: c.lineOf(field), Field: field, Msg: fmt.Sprintf(format, args...)}
}

// ForgetLines drops the line of every field, which only errors about the file use
// (ErrorAt then places its errors at no line). For a Config kept for a whole run, as
// `up` keeps the running one to compare a reload with: with 10 000 peers the lines are
// about 300 bytes per peer.
func (c *Config) ForgetLines() { c.lines = nil }

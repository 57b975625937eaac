package config

import "fmt"

// ErrorAt returns an error about field placed like the loader's own: at the field's line
// or, when the field is absent, at the line of its nearest present parent. It is for
// checks made outside this package against the host (`bondtun check`), so that their
// findings name the file, line and field too.
func (c *Config) ErrorAt(field, format string, args ...any) *Error {
	return &Error{File: c.Path, Line: c.lineOf(field), Field: field, Msg: fmt.Sprintf(format, args...)}
}

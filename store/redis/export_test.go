package redis

// GlobEscape lets the external tests match the keys of one prefix as the
// store does.
var GlobEscape = globEscape

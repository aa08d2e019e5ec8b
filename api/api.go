// Package api holds the JSON answers of alertmedic's HTTP API: the handlers
// that serve them (receiver), the packages that compute them (pipeline,
// remediation, app) and the clients that read them (a CLI, `alertmedic
// alert why --url`, a page) share these types, so that an answer has one
// shape wherever it is written or read. It imports only the standard
// library and alert; where an answer carries another package's own type
// (a flapping configuration, a notification), it carries that type's JSON
// as it is, for a reader that knows the type to decode.
package api

package alert

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"time"

	"github.com/prometheus/alertmanager/template"
)

// InvalidError is a message that can never become valid: the receiver answers
// it with 400 so that Alertmanager stops retrying.
type InvalidError struct {
	msg string
	// TooLarge marks a message over a size limit (its alert count), which
	// HTTP answers with 413 rather than 400.
	TooLarge bool
}

func (e *InvalidError) Error() string { return e.msg }

func invalid(format string, args ...any) error {
	return &InvalidError{msg: fmt.Sprintf(format, args...)}
}

// IsInvalid reports whether err says the message itself is bad.
func IsInvalid(err error) bool {
	var ie *InvalidError
	return errors.As(err, &ie)
}

// wireAlert keeps timestamps as text so that a bad one is reported with the
// alert it belongs to instead of as an anonymous JSON error.
type wireAlert struct {
	Status       string      `json:"status"`
	Labels       template.KV `json:"labels"`
	Annotations  template.KV `json:"annotations"`
	StartsAt     *string     `json:"startsAt"`
	EndsAt       *string     `json:"endsAt"`
	GeneratorURL string      `json:"generatorURL"`
	Fingerprint  string      `json:"fingerprint"`
}

// wireMessage mirrors Message field for field. Unknown fields are ignored on
// purpose: Alertmanager adds fields between versions (0.35 added
// notification_reason and routeLabels) and an older alertmedic must still
// take the alerts.
type wireMessage struct {
	Version            string      `json:"version"`
	GroupKey           string      `json:"groupKey"`
	TruncatedAlerts    uint64      `json:"truncatedAlerts"`
	Receiver           string      `json:"receiver"`
	Status             string      `json:"status"`
	Alerts             []wireAlert `json:"alerts"`
	NotificationReason string      `json:"notification_reason"`
	GroupLabels        template.KV `json:"groupLabels"`
	CommonLabels       template.KV `json:"commonLabels"`
	CommonAnnotations  template.KV `json:"commonAnnotations"`
	RouteLabels        template.KV `json:"routeLabels"`
	ExternalURL        string      `json:"externalURL"`
}

// Limits bound what Decode accepts.
type Limits struct {
	// MaxAlerts is the most alerts one message may carry; 0 means no limit.
	MaxAlerts int
}

// Decode reads one webhook message and validates it. Every error it returns
// for bad input is an *InvalidError whose text says what is wrong and where.
func Decode(body []byte, lim Limits) (*Message, error) {
	var w wireMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&w); err != nil {
		return nil, invalid("body is not a valid JSON webhook message: %s", jsonErrorText(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, invalid("body is not a valid JSON webhook message: unexpected data after the message")
	}
	if w.Version != "4" {
		if w.Version == "" {
			return nil, invalid(`version is missing; alertmedic accepts Alertmanager's webhook version "4"`)
		}
		return nil, invalid(`version %q is not supported; alertmedic accepts Alertmanager's webhook version "4"`, w.Version)
	}
	if w.Status != "" && w.Status != StatusFiring && w.Status != StatusResolved {
		return nil, invalid(`status %q must be "firing" or "resolved"`, w.Status)
	}
	if len(w.Alerts) == 0 {
		return nil, invalid("alerts is empty; a webhook message must carry at least one alert")
	}
	if lim.MaxAlerts > 0 && len(w.Alerts) > lim.MaxAlerts {
		return nil, &InvalidError{
			msg:      fmt.Sprintf("message carries %d alerts, more than the limit of %d (set max_alerts in Alertmanager's webhook_config, or raise web.max_alerts)", len(w.Alerts), lim.MaxAlerts),
			TooLarge: true,
		}
	}
	m := &Message{
		Version:         w.Version,
		GroupKey:        w.GroupKey,
		TruncatedAlerts: w.TruncatedAlerts,
		Data: &template.Data{
			Receiver:           w.Receiver,
			Status:             w.Status,
			Alerts:             make(template.Alerts, 0, len(w.Alerts)),
			NotificationReason: w.NotificationReason,
			GroupLabels:        orEmpty(w.GroupLabels),
			CommonLabels:       orEmpty(w.CommonLabels),
			CommonAnnotations:  orEmpty(w.CommonAnnotations),
			RouteLabels:        w.RouteLabels,
			ExternalURL:        w.ExternalURL,
		},
	}
	for i, wa := range w.Alerts {
		a, err := convertAlert(wa)
		if err != nil {
			return nil, invalid("alerts[%d]: %s", i, err)
		}
		m.Alerts = append(m.Alerts, a)
	}
	return m, nil
}

func convertAlert(wa wireAlert) (template.Alert, error) {
	if len(wa.Labels) == 0 {
		return template.Alert{}, errors.New("labels are missing; every alert needs at least an alertname label")
	}
	name, ok := wa.Labels["alertname"]
	if !ok || name == "" {
		return template.Alert{}, errors.New("label alertname is missing")
	}
	if wa.Status != StatusFiring && wa.Status != StatusResolved {
		return template.Alert{}, fmt.Errorf(`alert %q: status %q must be "firing" or "resolved"`, name, wa.Status)
	}
	if wa.StartsAt == nil || *wa.StartsAt == "" {
		return template.Alert{}, fmt.Errorf("alert %q: startsAt is missing", name)
	}
	starts, err := time.Parse(time.RFC3339Nano, *wa.StartsAt)
	if err != nil {
		return template.Alert{}, fmt.Errorf("alert %q: startsAt %q is not an RFC 3339 timestamp", name, *wa.StartsAt)
	}
	var ends time.Time
	if wa.EndsAt != nil && *wa.EndsAt != "" {
		ends, err = time.Parse(time.RFC3339Nano, *wa.EndsAt)
		if err != nil {
			return template.Alert{}, fmt.Errorf("alert %q: endsAt %q is not an RFC 3339 timestamp", name, *wa.EndsAt)
		}
	}
	if wa.Status == StatusResolved && ends.IsZero() {
		return template.Alert{}, fmt.Errorf("alert %q: resolved alert has no endsAt", name)
	}
	a := template.Alert{
		Status:       wa.Status,
		Labels:       wa.Labels,
		Annotations:  orEmpty(wa.Annotations),
		StartsAt:     starts,
		EndsAt:       ends,
		GeneratorURL: wa.GeneratorURL,
	}
	// The fingerprint is recomputed, not trusted: it keys history, dedup and
	// later idempotency, and a sender that got it wrong must not split one
	// alert in two.
	a.Fingerprint = Fingerprint(a.Labels)
	return a, nil
}

func orEmpty(kv template.KV) template.KV {
	if kv == nil {
		return template.KV{}
	}
	return kv
}

// jsonErrorText turns encoding/json's errors into text that names the field.
func jsonErrorText(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("%s at byte %d", se.Error(), se.Offset)
	case errors.As(err, &te):
		if te.Field == "" {
			return fmt.Sprintf("the message must be a JSON object, not JSON %s", te.Value)
		}
		return fmt.Sprintf("field %s must be %s, not JSON %s", te.Field, jsonKind(te.Type), te.Value)
	case errors.Is(err, io.EOF):
		return "body is empty"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "body ends in the middle of the JSON"
	}
	return err.Error()
}

func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Bool:
		return "true or false"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "a number"
}

package flapping

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"

	"github.com/alertmedic/alertmedic/alert"
)

func TestDefaults(t *testing.T) {
	want := Config{Method: "count", Threshold: 5, Window: model.Duration(30 * time.Minute), High: 30, Low: 20, StableFor: model.Duration(15 * time.Minute)}
	if got := DefaultConfig(); !reflect.DeepEqual(got, want) {
		t.Fatalf("DefaultConfig() = %+v, want %+v", got, want)
	}
	if errs := want.Validate(); len(errs) > 0 {
		t.Fatalf("defaults do not validate: %v", errs)
	}

	cases := []struct {
		name string
		in   Config
		want Config
	}{
		{"zero is the defaults", Config{}, want},
		{
			"set fields are kept",
			Config{Method: "weighted", Threshold: 3, Window: model.Duration(time.Hour), By: []string{"alertname"}, High: 50, Low: 25, StableFor: model.Duration(time.Minute)},
			Config{Method: "weighted", Threshold: 3, Window: model.Duration(time.Hour), By: []string{"alertname"}, High: 50, Low: 25, StableFor: model.Duration(time.Minute)},
		},
		{
			"low 0 with high set is a setting, not unset",
			Config{High: 40},
			Config{Method: "count", Threshold: 5, Window: want.Window, High: 40, Low: 0, StableFor: want.StableFor},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.in
			c.SetDefaults()
			if !reflect.DeepEqual(c, tc.want) {
				t.Errorf("SetDefaults() = %+v, want %+v", c, tc.want)
			}
		})
	}
}

// The config loader decodes with yaml.v3; these check that Config and
// Override behave there: durations read as "30m", absent keys keep their
// defaults, explicit zeros stay, type errors stay yaml.TypeErrors.
func TestYAML(t *testing.T) {
	d := DefaultConfig()
	cases := []struct {
		name string
		in   string
		want Config
	}{
		{"empty mapping is the defaults", "{}", d},
		{
			"durations and explicit zero low",
			"method: weighted\nwindow: 1h\nstable_for: 90s\nhigh: 45\nlow: 0\nby: [alertname, instance]\n",
			Config{Method: "weighted", Threshold: 5, Window: model.Duration(time.Hour), By: []string{"alertname", "instance"}, High: 45, Low: 0, StableFor: model.Duration(90 * time.Second)},
		},
		{
			"explicit zero threshold stays, for Validate to refuse",
			"threshold: 0\n",
			Config{Method: "count", Threshold: 0, Window: d.Window, High: 30, Low: 20, StableFor: d.StableFor},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			dec := yaml.NewDecoder(strings.NewReader(tc.in))
			dec.KnownFields(true)
			if err := dec.Decode(&c); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(c, tc.want) {
				t.Errorf("got %+v, want %+v", c, tc.want)
			}
		})
	}

	t.Run("type error stays a yaml.TypeError", func(t *testing.T) {
		var c Config
		err := yaml.Unmarshal([]byte("threshold: many\n"), &c)
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			t.Fatalf("err = %v (%T), want a *yaml.TypeError", err, err)
		}
	})
	t.Run("unknown key is refused", func(t *testing.T) {
		var c Config
		dec := yaml.NewDecoder(strings.NewReader("treshold: 3\n"))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err == nil || !strings.Contains(err.Error(), "treshold") {
			t.Fatalf("err = %v, want one naming treshold", err)
		}
	})
	t.Run("override: absent is nil, by: [] is empty", func(t *testing.T) {
		var o Override
		if err := yaml.Unmarshal([]byte("threshold: 8\nby: []\n"), &o); err != nil {
			t.Fatal(err)
		}
		if o.Threshold == nil || *o.Threshold != 8 {
			t.Errorf("threshold = %v, want 8", o.Threshold)
		}
		if o.By == nil || len(*o.By) != 0 {
			t.Errorf("by = %v, want a pointer to an empty list", o.By)
		}
		if o.Method != nil || o.Window != nil || o.High != nil || o.Low != nil || o.StableFor != nil {
			t.Errorf("absent keys were set: %+v", o)
		}
	})
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name   string
		modify func(*Config)
		want   []string
	}{
		{"defaults", func(*Config) {}, nil},
		{"low 0 is valid", func(c *Config) { c.Low = 0 }, nil},
		{"high 100 is valid", func(c *Config) { c.High, c.Low = 100, 99.5 }, nil},
		{"unknown method", func(c *Config) { c.Method = "x" }, []string{`method: must be count or weighted, got "x"`}},
		{"empty method", func(c *Config) { c.Method = "" }, []string{`method: must be count or weighted, got ""`}},
		{"threshold 0", func(c *Config) { c.Threshold = 0 }, []string{"threshold: must be at least 1, got 0"}},
		{"threshold too large", func(c *Config) { c.Threshold = 5000 }, []string{"threshold: must be at most 999, got 5000"}},
		{"window 0", func(c *Config) { c.Window = 0 }, []string{"window: must be a positive duration, got 0s"}},
		{"stable_for negative", func(c *Config) { c.StableFor = model.Duration(-time.Minute) }, []string{"stable_for: must be a positive duration, got -1m"}},
		{"low above high", func(c *Config) { c.Low = 40 }, []string{"low: must be below high (30), got 40"}},
		{"low equal to high", func(c *Config) { c.Low = 30 }, []string{"low: must be below high (30), got 30"}},
		{"low negative", func(c *Config) { c.Low = -1 }, []string{"low: must be at least 0, got -1"}},
		{"high above 100", func(c *Config) { c.High = 120 }, []string{"high: must be at most 100, got 120"}},
		{"NaN fails", func(c *Config) { c.High = nan() }, []string{"high: must be at most 100, got NaN", "low: must be below high (NaN), got 20"}},
		{"by: empty name and duplicate", func(c *Config) { c.By = []string{"alertname", "", "alertname"} }, []string{
			"by[1]: must be a label name, got an empty string",
			`by[2]: "alertname" is listed twice`,
		}},
		{"every problem at once", func(c *Config) { *c = Config{Method: "nagios", Low: 50, High: 10} }, []string{
			`method: must be count or weighted, got "nagios"`,
			"threshold: must be at least 1, got 0",
			"window: must be a positive duration, got 0s",
			"low: must be below high (10), got 50",
			"stable_for: must be a positive duration, got 0s",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.modify(&c)
			errs := c.Validate()
			var got []string
			for _, err := range errs {
				var fe FieldError
				if !errors.As(err, &fe) {
					t.Errorf("%v is a %T, want a FieldError", err, err)
				}
				got = append(got, err.Error())
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Validate() =\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

func nan() float64 { z := 0.0; return z / z }

func TestMerge(t *testing.T) {
	parent := DefaultConfig()
	parent.By = []string{"alertname"}
	str := func(s string) *string { return &s }
	num := func(n int) *int { return &n }
	flt := func(f float64) *float64 { return &f }
	dur := func(d time.Duration) *model.Duration { m := model.Duration(d); return &m }
	list := func(s ...string) *[]string { l := append([]string{}, s...); return &l }

	cases := []struct {
		name string
		o    *Override
		want Config
	}{
		{"nil inherits everything", nil, parent},
		{"empty inherits everything", &Override{}, parent},
		{
			"set fields replace",
			&Override{Method: str("weighted"), High: flt(60), Low: flt(0), StableFor: dur(time.Hour)},
			Config{Method: "weighted", Threshold: 5, Window: parent.Window, By: []string{"alertname"}, High: 60, Low: 0, StableFor: model.Duration(time.Hour)},
		},
		{
			"count settings",
			&Override{Threshold: num(10), Window: dur(10 * time.Minute), By: list("alertname", "cluster")},
			Config{Method: "count", Threshold: 10, Window: model.Duration(10 * time.Minute), By: []string{"alertname", "cluster"}, High: 30, Low: 20, StableFor: parent.StableFor},
		},
		{
			"by: [] means each alert on its own",
			&Override{By: list()},
			Config{Method: "count", Threshold: 5, Window: parent.Window, By: []string{}, High: 30, Low: 20, StableFor: parent.StableFor},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Merge(parent, tc.o)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Merge() = %+v, want %+v", got, tc.want)
			}
			if len(got.By) > 0 {
				got.By[0] = "changed" // must not reach the parent
			}
			if !reflect.DeepEqual(parent.By, []string{"alertname"}) {
				t.Errorf("parent changed: by = %v", parent.By)
			}
		})
	}

	t.Run("an override can make a valid parent invalid", func(t *testing.T) {
		got := Merge(DefaultConfig(), &Override{Low: flt(40)})
		errs := got.Validate()
		if len(errs) != 1 || errs[0].Error() != "low: must be below high (30), got 40" {
			t.Errorf("Validate() = %v", errs)
		}
	})
}

func TestKey(t *testing.T) {
	a := template.KV{"alertname": "HighErrorRate", "instance": "a:8000", "severity": "critical"}
	b := template.KV{"alertname": "HighErrorRate", "instance": "b:8000", "severity": "critical"}
	other := template.KV{"alertname": "LowCacheHitRate", "instance": "a:8000"}
	perAlert := DefaultConfig()
	byName := DefaultConfig()
	byName.By = []string{"alertname"}
	byNameTeam := DefaultConfig()
	byNameTeam.By = []string{"alertname", "team"}

	cases := []struct {
		name      string
		cfg       Config
		x, y      template.KV
		fpX       string
		wantSame  bool
		wantEqual string // when set, Key(cfg, fpX, x) must equal it
	}{
		{"per alert: the fingerprint given", perAlert, a, b, "0123456789abcdef", false, "0123456789abcdef"},
		{"per alert: computed when not given", perAlert, a, b, "", false, alert.Fingerprint(a)},
		{"per alert: instances apart", perAlert, a, b, "", false, ""},
		{"by alertname: instances together", byName, a, b, "", true, ""},
		{"by alertname: names apart", byName, a, other, "", false, ""},
		{"by alertname ignores the fingerprint", byName, a, a, "0123456789abcdef", true, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kx := Key(tc.cfg, tc.fpX, tc.x)
			ky := Key(tc.cfg, "", tc.y)
			if (kx == ky) != tc.wantSame {
				t.Errorf("Key(x) = %q, Key(y) = %q; same = %v, want %v", kx, ky, kx == ky, tc.wantSame)
			}
			if tc.wantEqual != "" && kx != tc.wantEqual {
				t.Errorf("Key = %q, want %q", kx, tc.wantEqual)
			}
			if len(tc.cfg.By) > 0 && !strings.HasPrefix(kx, "by:") {
				t.Errorf("Key = %q, want the by: prefix", kx)
			}
		})
	}

	t.Run("a missing label still tells by lists apart", func(t *testing.T) {
		if k1, k2 := Key(byName, "", a), Key(byNameTeam, "", a); k1 == k2 {
			t.Errorf("by [alertname] and by [alertname, team] share key %q", k1)
		}
	})
	t.Run("stable", func(t *testing.T) {
		// A fixed value: a change here moves every stored state.
		if got, want := Key(byName, "", a), "by:"+alert.Fingerprint(template.KV{"alertname": "HighErrorRate"}); got != want {
			t.Errorf("Key = %q, want %q", got, want)
		}
	})
}

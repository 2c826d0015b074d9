package main

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

const validConfig = `timezone: Europe/Moscow
database: otklik.db
sources:
  - name: office
    dir: drop
smtp:
  address: 127.0.0.1:2525
  from: "Магазин <noreply@example.ru>"
  tls: none
survey:
  base_url: https://otklik.example.ru
`

func TestParseConfig_Errors(t *testing.T) {
	for _, tc := range []struct {
		name, edit, want string
	}{
		{"unknown key with line", "", "/etc/otklik.yaml:10: smtp.adress: unknown key (did you mean \"address\"?)"},
		{"unknown top key", "databse: x.db\n", "/etc/otklik.yaml:12: databse: unknown key (did you mean \"database\"?)"},
		{"secret inline", "", "smtp.password: secrets are not kept in the config file"},
		{"bad window", "", "survey.window"},
		{"bad cron", "", "schedule.send"},
		{"bad zone", "", "timezone: \"Mars/Base\""},
		{"bad source type", "", "sources[0].type: \"nfs\" is not one of local"},
		{"duplicate source", "", "sources[1].name: \"office\" is used by another source"},
		{"auth without tls", "", "smtp.user: authentication needs TLS"},
		{"bad manager", "", "reports.managers[0]"},
		{"bad base url", "", "survey.base_url"},
		{"not yaml", "", "did not find expected"},
		{"misspelt column", "", `/etc/otklik.yaml:8: sources[0].columns.purchases.reciept: "reciept" is not a column of purchases (did you mean "receipt"?)`},
		{"column of no CSV feed", "", `sources[0].columns.orders: "orders" is not a CSV feed`},
		{"negative file limit", "max_file_mb: -1\n", "max_file_mb: must not be negative"},
		{"encoding of no CSV feed", "", `sources[0].encodings.orders: "orders" is not a CSV feed`},
		{"bad feed encoding", "", `sources[0].encodings.customers: "koi8-r" is not utf-8 or windows-1251`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := validConfig
			switch tc.name {
			case "unknown key with line":
				body = strings.Replace(body, "  tls: none\n", "  tls: none\n  adress: x\n", 1)
			case "unknown top key", "negative file limit":
				body += tc.edit
			case "encoding of no CSV feed":
				body = strings.Replace(body, "    dir: drop\n", "    dir: drop\n    encodings: {orders: utf-8}\n", 1)
			case "bad feed encoding":
				body = strings.Replace(body, "    dir: drop\n", "    dir: drop\n    encodings: {customers: koi8-r}\n", 1)
			case "secret inline":
				body = strings.Replace(body, "  tls: none\n", "  tls: none\n  password: hunter2\n", 1)
			case "bad window":
				body += "  window: 20:00-10:00\n"
			case "bad cron":
				body += "schedule:\n  send: \"every ten minutes\"\n"
			case "bad zone":
				body = strings.Replace(body, "Europe/Moscow", "Mars/Base", 1)
			case "bad source type":
				body = strings.Replace(body, "    dir: drop\n", "    dir: drop\n    type: nfs\n", 1)
			case "duplicate source":
				body = strings.Replace(body, "smtp:", "  - name: office\n    dir: other\nsmtp:", 1)
			case "auth without tls":
				body = strings.Replace(body, "  tls: none\n", "  tls: none\n  user: otklik\n  password_env: X\n", 1)
			case "bad manager":
				body += "reports:\n  managers: [\"не адрес\"]\n"
			case "bad base url":
				body = strings.Replace(body, "https://otklik.example.ru", "otklik.example.ru", 1)
			case "not yaml":
				body += "survey: [\n"
			case "misspelt column":
				body = strings.Replace(body, "    dir: drop\n", "    dir: drop\n    columns:\n      purchases:\n        reciept: НомерДокумента\n", 1)
			case "column of no CSV feed":
				body = strings.Replace(body, "    dir: drop\n", "    dir: drop\n    columns:\n      orders: {receipt: Номер}\n", 1)
			}
			_, err := ParseConfig("/etc/otklik.yaml", []byte(body))
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a *ConfigError", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestParseConfig_DefaultsAndPaths(t *testing.T) {
	cfg, err := ParseConfig("/etc/otklik/otklik.yaml", []byte(validConfig))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Database != "/etc/otklik/otklik.db" || cfg.Sources[0].Dir != "/etc/otklik/drop" {
		t.Errorf("relative paths: %q %q", cfg.Database, cfg.Sources[0].Dir)
	}
	if cfg.Survey.MaxAgeDays != 3 || cfg.Survey.CooldownDays != 30 || cfg.Survey.Window != "10:00-20:00" || cfg.Sources[0].Type != "local" {
		t.Errorf("defaults: %+v %+v", cfg.Survey, cfg.Sources[0])
	}
}

// keyPaths lists every YAML key of a type, as "smtp.address".
func keyPaths(t reflect.Type, prefix string) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		ft := f.Type
		if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct {
			out = append(out, keyPaths(ft, prefix+tag+".")...)
			continue
		}
		out = append(out, prefix+tag)
	}
	return out
}

func TestConfigExample_DocumentsEveryKey(t *testing.T) {
	body, err := os.ReadFile("../../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig("config.example.yaml", body)
	if err != nil {
		t.Fatalf("the example does not load: %v", err)
	}
	for _, k := range keyPaths(reflect.TypeFor[Config](), "") {
		if k == "smtp.password" {
			continue // refused on purpose
		}
		if _, ok := cfg.lines[strings.Replace(k, "sources.", "sources[0].", 1)]; !ok {
			t.Errorf("config.example.yaml does not show key %s", k)
		}
	}
}

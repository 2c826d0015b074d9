package main

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/otklik/otklik/etl"
	"github.com/otklik/otklik/mailer"
	"github.com/robfig/cron/v3"
	"gopkg.in/yaml.v3"
)

// Config is otklik's configuration file. Every key is documented in
// config.example.yaml.
type Config struct {
	Timezone  string          `yaml:"timezone"`
	Database  string          `yaml:"database"`
	Spool     string          `yaml:"spool"`
	Templates string          `yaml:"templates"`
	Log       LogConfig       `yaml:"log"`
	Sources   []SourceConfig  `yaml:"sources"`
	SMTP      SMTPConfig      `yaml:"smtp"`
	Survey    SurveyConfig    `yaml:"survey"`
	Schedule  ScheduleConfig  `yaml:"schedule"`
	Reports   ReportsConfig   `yaml:"reports"`
	Admin     AdminConfig     `yaml:"admin"`
	Backup    BackupConfig    `yaml:"backup"`
	Retention RetentionConfig `yaml:"retention"`
	// SpoolKeepDays is how long downloaded copies are kept.
	SpoolKeepDays int `yaml:"spool_keep_days"`
	// MaxFileMB: a larger file on a source is refused without download.
	MaxFileMB int `yaml:"max_file_mb"`

	path  string         // the file it was read from
	lines map[string]int // key path -> line, for error messages
}

// LogConfig sets logging.
type LogConfig struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// SourceConfig is one place 1C drops files.
type SourceConfig struct {
	Name             string              `yaml:"name"`
	Type             string              `yaml:"type"`
	Dir              string              `yaml:"dir"`
	Address          string              `yaml:"address"`
	User             string              `yaml:"user"`
	PasswordEnv      string              `yaml:"password_env"`
	PasswordFile     string              `yaml:"password_file"`
	KeyFile          string              `yaml:"key_file"`
	KeyPassphraseEnv string              `yaml:"key_passphrase_env"`
	KnownHosts       string              `yaml:"known_hosts"`
	CAFile           string              `yaml:"ca_file"`
	TLS              string              `yaml:"tls"`
	DisableEPSV      bool                `yaml:"disable_epsv"`
	DisableMLSD      bool                `yaml:"disable_mlsd"`
	NameEncoding     string              `yaml:"name_encoding"`
	ServerTimezone   string              `yaml:"server_timezone"`
	Timeout          Duration            `yaml:"timeout"`
	Patterns         map[string][]string `yaml:"patterns"`
	Ready            ReadyConfig         `yaml:"ready"`
	After            string              `yaml:"after"`
	ProcessedDir     string              `yaml:"processed_dir"`
	OutboundDir      string              `yaml:"outbound_dir"`
	Encoding         string              `yaml:"encoding"`
	// Encodings: feed -> the encoding of its files, before Encoding.
	Encodings map[string]string `yaml:"encodings"`
	// Columns: feed -> column -> the header this source's 1C writes.
	Columns map[string]map[string]string `yaml:"columns"`
}

// ReadyConfig says when a file on a source is complete.
type ReadyConfig struct {
	MinAge         Duration `yaml:"min_age"`
	StableFor      Duration `yaml:"stable_for"`
	MarkerSuffixes []string `yaml:"marker_suffixes"`
	DropMarker     string   `yaml:"drop_marker"`
}

// AdminConfig says who hears about trouble, and when.
type AdminConfig struct {
	Emails         []string `yaml:"emails"`
	SourceFailures int      `yaml:"source_failures"`
	// Listen is where /metrics and /healthz are served for monitoring.
	Listen string `yaml:"listen"`
	// ExpectDropBy: by this local time each day a file of each of
	// ExpectedFeeds must have been loaded.
	ExpectDropBy  string   `yaml:"expect_drop_by"`
	ExpectedFeeds []string `yaml:"expected_feeds"`
	// SmallDropShare: a day's drop of a feed with fewer rows than this
	// share of the median of the 4 weeks before is reported.
	SmallDropShare float64 `yaml:"small_drop_share"`
	// MinFreeMB: less free space than this on the database's, the
	// spool's or SQLite's temporary folder's disk is reported.
	MinFreeMB int `yaml:"min_free_mb"`
}

// BackupConfig says where nightly copies of the database go.
type BackupConfig struct {
	Dir  string `yaml:"dir"`
	Keep int    `yaml:"keep"`
}

// RetentionConfig says how long personal data is kept.
type RetentionConfig struct {
	CustomersMonths int `yaml:"customers_months"`
	AnswersMonths   int `yaml:"answers_months"`
}

// SMTPConfig is the mail server otklik sends through.
type SMTPConfig struct {
	Address      string   `yaml:"address"`
	From         string   `yaml:"from"`
	Hello        string   `yaml:"hello"`
	TLS          string   `yaml:"tls"`
	User         string   `yaml:"user"`
	Password     string   `yaml:"password"` // refused: secrets come from the environment or a file
	PasswordEnv  string   `yaml:"password_env"`
	PasswordFile string   `yaml:"password_file"`
	Timeout      Duration `yaml:"timeout"`
	MaxConns     int      `yaml:"max_conns"`
	RatePerSec   float64  `yaml:"rate_per_sec"`
	MaxPerHour   int      `yaml:"max_per_hour"`
	// UnsubscribeMailto is offered in List-Unsubscribe besides the link.
	UnsubscribeMailto string     `yaml:"unsubscribe_mailto"`
	DKIM              DKIMConfig `yaml:"dkim"`
}

// DKIMConfig signs outgoing mail.
type DKIMConfig struct {
	Domain   string `yaml:"domain"`
	Selector string `yaml:"selector"`
	KeyFile  string `yaml:"key_file"`
}

// SurveyConfig sets who is surveyed, when, and where the page lives.
type SurveyConfig struct {
	BaseURL      string `yaml:"base_url"`
	Listen       string `yaml:"listen"`
	MaxAgeDays   int    `yaml:"max_age_days"`
	CooldownDays int    `yaml:"cooldown_days"`
	Window       string `yaml:"window"`
	Pages        string `yaml:"pages"`
	// ReminderDays: one reminder this many days after an unanswered
	// invitation; 0 sends none.
	ReminderDays int `yaml:"reminder_days"`
	// ThankYou sends a thank-you with a promo code after an answer.
	ThankYou *bool          `yaml:"thank_you"`
	Sampling SamplingConfig `yaml:"sampling"`
	// Questions is a YAML file of the survey's texts and scales; "" uses
	// the built-in ones.
	Questions string `yaml:"questions"`
	// Dictionary is the keyword file that classifies comments; "" uses
	// the built-in one.
	Dictionary   string       `yaml:"dictionary"`
	Alerts       AlertsConfig `yaml:"alerts"`
	PerIPRate    float64      `yaml:"per_ip_rate"`
	RealIPHeader string       `yaml:"real_ip_header"`
}

// AlertsConfig says which answers are negative and who hears about them
// besides the store's director.
type AlertsConfig struct {
	Threshold int      `yaml:"threshold"`
	Groups    []string `yaml:"groups"`
}

// SamplingConfig sets monthly targets of answers per store.
type SamplingConfig struct {
	Targets           map[string]int `yaml:"targets"`
	DefaultTarget     int            `yaml:"default_target"`
	PriorResponseRate float64        `yaml:"prior_response_rate"`
}

// ScheduleConfig holds cron expressions in the configured time zone.
type ScheduleConfig struct {
	Ingest string `yaml:"ingest"`
	Send   string `yaml:"send"`
	Report string `yaml:"report"`
	// Alerts sends what customers' answers started (alerts to directors,
	// thank-yous) through the day and night.
	Alerts string `yaml:"alerts"`
	// Export writes answers, promo codes and unsubscribes back for 1C.
	Export string `yaml:"export"`
	// Backup copies the database; Retention anonymizes old personal
	// data; Summary emails the administrator the day's figures; Watch
	// checks for missing drops, SMTP and disk space.
	Backup    string `yaml:"backup"`
	Retention string `yaml:"retention"`
	Summary   string `yaml:"summary"`
	Watch     string `yaml:"watch"`
}

// ReportsConfig says where workbooks go and who gets them.
type ReportsConfig struct {
	Dir      string   `yaml:"dir"`
	Managers []string `yaml:"managers"`
	// MinAnswers: stores with fewer answers in the month are not ranked.
	MinAnswers int `yaml:"min_answers"`
	// Directors: each store director also gets the workbook of their own
	// stores.
	Directors *bool `yaml:"directors"`
}

// Duration is a time.Duration written as "90s" or "15m" in YAML.
type Duration time.Duration

// UnmarshalYAML reads a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration like 90s or 15m", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// ConfigError is a problem with the configuration; it names the file, the
// line where known, and the key. It makes the process exit with status 2.
type ConfigError struct {
	File string
	Line int
	Key  string
	Msg  string
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// LoadConfig reads, checks and completes a configuration file.
func LoadConfig(path string) (*Config, error) {
	body, err := os.ReadFile(path)
	if err != nil {
		return nil, &ConfigError{File: path, Msg: fmt.Sprintf("cannot read: %v", err)}
	}
	return ParseConfig(path, body)
}

// ParseConfig parses a configuration from bytes; path is used in messages
// and as the base of relative paths.
func ParseConfig(path string, body []byte) (*Config, error) {
	cfg := &Config{path: path, lines: map[string]int{}}
	var root yaml.Node
	if err := yaml.Unmarshal(body, &root); err != nil {
		return nil, &ConfigError{File: path, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if len(root.Content) > 0 {
		doc := root.Content[0]
		if err := checkKeys(path, doc, reflect.TypeFor[Config](), "", cfg.lines); err != nil {
			return nil, err
		}
		if err := doc.Decode(cfg); err != nil {
			return nil, &ConfigError{File: path, Msg: strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:\n  ")}
		}
	}
	cfg.defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// checkKeys walks the YAML tree against the Config type, refusing any key
// the type does not have (with its line) and noting each key's line.
func checkKeys(file string, n *yaml.Node, t reflect.Type, prefix string, lines map[string]int) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
				return nil
			}
			return &ConfigError{File: file, Line: n.Line, Key: strings.TrimPrefix(prefix, "."), Msg: "must be a mapping of keys"}
		}
		fields := map[string]reflect.StructField{}
		for i := range t.NumField() {
			f := t.Field(i)
			if tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); tag != "" && tag != "-" {
				fields[tag] = f
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			key := strings.TrimPrefix(prefix+"."+k.Value, ".")
			f, ok := fields[k.Value]
			if !ok {
				msg := "unknown key"
				if s := suggest(k.Value, fields); s != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", s)
				}
				return &ConfigError{File: file, Line: k.Line, Key: key, Msg: msg}
			}
			lines[key] = k.Line
			if err := checkKeys(file, v, f.Type, key, lines); err != nil {
				return err
			}
		}
	case reflect.Map:
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				key := prefix + "." + k.Value
				lines[key] = k.Line
				if err := checkKeys(file, v, t.Elem(), key, lines); err != nil {
					return err
				}
			}
		}
	case reflect.Slice:
		if n.Kind == yaml.SequenceNode {
			for i, item := range n.Content {
				key := fmt.Sprintf("%s[%d]", prefix, i)
				lines[key] = item.Line
				if err := checkKeys(file, item, t.Elem(), key, lines); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// suggest returns the known key closest to a misspelt one, if close.
func suggest(key string, fields map[string]reflect.StructField) string {
	return closest(key, slices.Sorted(maps.Keys(fields)))
}

// closest returns the name closest to a misspelt one, if close.
func closest(name string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := editDistance(name, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

func (c *Config) defaults() {
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&c.Timezone, "Europe/Moscow")
	def(&c.Database, "/var/lib/otklik/otklik.db")
	def(&c.Spool, "/var/lib/otklik/spool")
	def(&c.Reports.Dir, "/var/lib/otklik/reports")
	def(&c.Log.Level, "info")
	def(&c.Log.Format, "text")
	def(&c.SMTP.TLS, mailer.TLSStartTLS)
	def(&c.Survey.Listen, "127.0.0.1:8080")
	def(&c.Survey.Window, "10:00-20:00")
	def(&c.Schedule.Ingest, "*/15 0-8 * * *")
	def(&c.Schedule.Send, "*/10 9-20 * * *")
	def(&c.Schedule.Report, "0 7 1 * *")
	def(&c.Schedule.Alerts, "*/2 * * * *")
	def(&c.Schedule.Export, "30 6 * * *")
	def(&c.Schedule.Backup, "0 3 * * *")
	def(&c.Schedule.Retention, "30 3 * * *")
	def(&c.Schedule.Summary, "0 9 * * *")
	def(&c.Schedule.Watch, "*/15 * * * *")
	def(&c.Admin.Listen, "127.0.0.1:9180")
	def(&c.Admin.ExpectDropBy, "08:00")
	def(&c.Backup.Dir, "/var/lib/otklik/backup")
	if c.Admin.ExpectedFeeds == nil {
		c.Admin.ExpectedFeeds = []string{"purchases"}
	}
	if c.Admin.SmallDropShare == 0 {
		c.Admin.SmallDropShare = 0.3
	}
	if c.Admin.MinFreeMB == 0 {
		c.Admin.MinFreeMB = 1024
	}
	if c.Backup.Keep == 0 {
		c.Backup.Keep = 7
	}
	if c.Retention.CustomersMonths == 0 {
		c.Retention.CustomersMonths = 36
	}
	if c.Retention.AnswersMonths == 0 {
		c.Retention.AnswersMonths = 36
	}
	if c.Reports.MinAnswers == 0 {
		c.Reports.MinAnswers = 30
	}
	if c.Reports.Directors == nil {
		yes := true
		c.Reports.Directors = &yes
	}
	if c.Survey.Alerts.Threshold == 0 {
		c.Survey.Alerts.Threshold = 3
	}
	if c.SMTP.Timeout == 0 {
		c.SMTP.Timeout = Duration(60 * time.Second)
	}
	if c.SMTP.MaxConns == 0 {
		c.SMTP.MaxConns = 4
	}
	if c.Survey.ThankYou == nil {
		yes := true
		c.Survey.ThankYou = &yes
	}
	if c.Survey.Sampling.PriorResponseRate == 0 {
		c.Survey.Sampling.PriorResponseRate = 0.15
	}
	if c.Survey.MaxAgeDays == 0 {
		c.Survey.MaxAgeDays = 3
	}
	if c.Survey.CooldownDays == 0 {
		c.Survey.CooldownDays = 30
	}
	if c.SpoolKeepDays == 0 {
		c.SpoolKeepDays = 30
	}
	if c.MaxFileMB == 0 {
		c.MaxFileMB = 4096
	}
	if c.Admin.SourceFailures == 0 {
		c.Admin.SourceFailures = 3
	}
	for i := range c.Sources {
		s := &c.Sources[i]
		def(&s.Type, "local")
		def(&s.After, "keep")
		def(&s.ProcessedDir, "processed")
		if s.Type == "ftps" {
			def(&s.TLS, "explicit")
		}
		if s.Timeout == 0 {
			s.Timeout = Duration(60 * time.Second)
		}
		// A file must be a minute old before it is taken, unless the key
		// says otherwise (min_age: 0s for a drop that renames into place).
		if _, set := c.lines[fmt.Sprintf("sources[%d].ready.min_age", i)]; !set {
			s.Ready.MinAge = Duration(time.Minute)
		}
	}
	// Relative paths are relative to the config file's folder, so a config
	// works the same whatever the working directory.
	base := filepath.Dir(c.path)
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
	abs(&c.Database)
	abs(&c.Spool)
	abs(&c.Reports.Dir)
	abs(&c.Backup.Dir)
	abs(&c.Templates)
	abs(&c.Survey.Pages)
	abs(&c.Survey.Questions)
	abs(&c.Survey.Dictionary)
	abs(&c.SMTP.PasswordFile)
	abs(&c.SMTP.DKIM.KeyFile)
	for i := range c.Sources {
		s := &c.Sources[i]
		if s.Type == "local" {
			abs(&s.Dir)
		}
		abs(&s.PasswordFile)
		abs(&s.KeyFile)
		abs(&s.KnownHosts)
		abs(&s.CAFile)
	}
}

var sourceName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// Validate checks every value and returns the first problem as a
// *ConfigError naming the key and its line.
func (c *Config) Validate() error {
	bad := func(key, format string, args ...any) error {
		return &ConfigError{File: c.path, Line: c.lines[key], Key: key, Msg: fmt.Sprintf(format, args...)}
	}
	if _, err := time.LoadLocation(c.Timezone); err != nil {
		return bad("timezone", "%q is not an IANA time zone like Europe/Moscow", c.Timezone)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return bad("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return bad("log.format", "%q is not text or json", c.Log.Format)
	}
	if len(c.Sources) == 0 {
		return bad("sources", "at least one source is needed")
	}
	names := map[string]bool{}
	for i, s := range c.Sources {
		key := fmt.Sprintf("sources[%d]", i)
		if !sourceName.MatchString(s.Name) {
			return bad(key+".name", "%q must be 1-32 lower-case letters, digits, '-' or '_'", s.Name)
		}
		if names[s.Name] {
			return bad(key+".name", "%q is used by another source", s.Name)
		}
		names[s.Name] = true
		switch s.Type {
		case "local":
			if s.Dir == "" {
				return bad(key+".dir", "a local source needs the folder 1C drops into")
			}
		case "ftp", "ftps", "sftp":
			if _, _, err := net.SplitHostPort(s.Address); err != nil {
				return bad(key+".address", "%q is not host:port", s.Address)
			}
			if s.User == "" {
				return bad(key+".user", "a %s source needs a user", s.Type)
			}
		default:
			return bad(key+".type", "%q is not one of local, ftp, ftps, sftp", s.Type)
		}
		switch {
		case s.Type == "ftps" && s.TLS != "explicit" && s.TLS != "implicit":
			return bad(key+".tls", "%q is not explicit or implicit", s.TLS)
		case s.Type != "ftps" && s.TLS != "":
			return bad(key+".tls", "only ftps sources take tls")
		case s.Type == "sftp" && s.KnownHosts == "":
			return bad(key+".known_hosts", "an sftp source needs a known_hosts file that pins the server's key (ssh-keyscan -p PORT HOST > FILE)")
		case s.Type == "sftp" && s.KeyFile == "" && s.PasswordEnv == "" && s.PasswordFile == "":
			return bad(key+".key_file", "an sftp source needs key_file or password_env/password_file")
		case (s.Type == "ftp" || s.Type == "ftps") && s.PasswordEnv == "" && s.PasswordFile == "" && s.User != "anonymous":
			return bad(key+".password_env", "an %s source needs password_env or password_file", s.Type)
		}
		switch s.After {
		case "keep", "move", "delete":
		default:
			return bad(key+".after", "%q is not keep, move or delete", s.After)
		}
		if s.ServerTimezone != "" {
			if _, err := time.LoadLocation(s.ServerTimezone); err != nil {
				return bad(key+".server_timezone", "%q is not an IANA time zone", s.ServerTimezone)
			}
		}
		switch s.NameEncoding {
		case "", etl.EncodingUTF8, etl.EncodingCP1251:
		default:
			return bad(key+".name_encoding", "%q is not utf-8 or windows-1251", s.NameEncoding)
		}
		for _, rel := range []struct{ k, v string }{{"processed_dir", s.ProcessedDir}, {"outbound_dir", s.OutboundDir}} {
			if filepath.IsAbs(rel.v) || strings.Contains(rel.v, "..") {
				return bad(key+"."+rel.k, "%q must be a folder below dir", rel.v)
			}
		}
		for feed, globs := range s.Patterns {
			if _, ok := etl.DefaultPatterns[feed]; !ok {
				return bad(key+".patterns", "%q is not a feed (stores, customers, purchases)", feed)
			}
			for _, g := range globs {
				if _, err := filepath.Match(g, ""); err != nil {
					return bad(key+".patterns", "%q is not a valid glob", g)
				}
			}
		}
		switch s.Encoding {
		case "", etl.EncodingUTF8, etl.EncodingCP1251:
		default:
			return bad(key+".encoding", "%q is not utf-8 or windows-1251 (leave empty to detect)", s.Encoding)
		}
		for _, feed := range slices.Sorted(maps.Keys(s.Encodings)) {
			if etl.Columns(feed) == nil {
				return bad(key+".encodings."+feed, "%q is not a CSV feed (stores, customers, purchases, promo_codes)", feed)
			}
			switch e := s.Encodings[feed]; e {
			case etl.EncodingUTF8, etl.EncodingCP1251:
			default:
				return bad(key+".encodings."+feed, "%q is not utf-8 or windows-1251", e)
			}
		}
		for feed, cols := range s.Columns {
			known := etl.Columns(feed)
			if known == nil {
				return bad(key+".columns."+feed, "%q is not a CSV feed (stores, customers, purchases, promo_codes)", feed)
			}
			for col, header := range cols {
				k := key + ".columns." + feed + "." + col
				if !slices.Contains(known, col) {
					msg := fmt.Sprintf("%q is not a column of %s", col, feed)
					if s := closest(col, known); s != "" {
						msg += fmt.Sprintf(" (did you mean %q?)", s)
					}
					return bad(k, "%s; the columns are %s", msg, strings.Join(known, ", "))
				}
				if strings.TrimSpace(header) == "" {
					return bad(k, "the header name is empty")
				}
			}
		}
	}
	if c.SMTP.Password != "" {
		return bad("smtp.password", "secrets are not kept in the config file; use password_env or password_file")
	}
	if c.SMTP.Address == "" {
		return bad("smtp.address", "the mail server is required, like smtp.example.ru:587")
	}
	if _, _, err := net.SplitHostPort(c.SMTP.Address); err != nil {
		return bad("smtp.address", "%q is not host:port", c.SMTP.Address)
	}
	from, err := mail.ParseAddress(c.SMTP.From)
	if err != nil || !strings.Contains(from.Address, "@") {
		return bad("smtp.from", "%q is not an address like \"Магазин <noreply@example.ru>\"", c.SMTP.From)
	}
	switch c.SMTP.TLS {
	case mailer.TLSStartTLS, mailer.TLSImplicit:
	case mailer.TLSNone:
		if c.SMTP.User != "" {
			return bad("smtp.user", "authentication needs TLS; set smtp.tls to starttls or implicit")
		}
	default:
		return bad("smtp.tls", "%q is not one of starttls, implicit, none", c.SMTP.TLS)
	}
	if c.SMTP.MaxConns < 1 || c.SMTP.MaxConns > 64 {
		return bad("smtp.max_conns", "must be between 1 and 64")
	}
	if c.SMTP.RatePerSec < 0 {
		return bad("smtp.rate_per_sec", "must not be negative")
	}
	if c.SMTP.MaxPerHour < 0 {
		return bad("smtp.max_per_hour", "must not be negative")
	}
	if d := c.SMTP.DKIM; d != (DKIMConfig{}) && (d.Domain == "" || d.Selector == "" || d.KeyFile == "") {
		return bad("smtp.dkim", "domain, selector and key_file are all needed")
	}
	if c.Survey.ReminderDays < 0 {
		return bad("survey.reminder_days", "must not be negative")
	}
	if r := c.Survey.Sampling.PriorResponseRate; r <= 0 || r > 1 {
		return bad("survey.sampling.prior_response_rate", "must be a share between 0 and 1, like 0.15")
	}
	for code, n := range c.Survey.Sampling.Targets {
		if n < 0 {
			return bad("survey.sampling.targets", "store %q: a target must not be negative", code)
		}
	}
	if c.SMTP.User != "" && c.SMTP.PasswordEnv == "" && c.SMTP.PasswordFile == "" {
		return bad("smtp.user", "a user needs password_env or password_file")
	}
	u, err := url.Parse(c.Survey.BaseURL)
	if c.Survey.BaseURL == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return bad("survey.base_url", "%q is not an address like https://otklik.example.ru", c.Survey.BaseURL)
	}
	if _, _, err := net.SplitHostPort(c.Survey.Listen); err != nil {
		return bad("survey.listen", "%q is not host:port", c.Survey.Listen)
	}
	if c.Survey.MaxAgeDays < 1 {
		return bad("survey.max_age_days", "must be at least 1")
	}
	if c.Survey.CooldownDays < 0 {
		return bad("survey.cooldown_days", "must not be negative")
	}
	if _, err := mailer.ParseWindow(c.Survey.Window); err != nil {
		return bad("survey.window", "%v", err)
	}
	for _, s := range []struct{ key, spec string }{
		{"schedule.ingest", c.Schedule.Ingest}, {"schedule.send", c.Schedule.Send}, {"schedule.report", c.Schedule.Report},
		{"schedule.alerts", c.Schedule.Alerts}, {"schedule.export", c.Schedule.Export},
		{"schedule.backup", c.Schedule.Backup}, {"schedule.retention", c.Schedule.Retention},
		{"schedule.summary", c.Schedule.Summary}, {"schedule.watch", c.Schedule.Watch},
	} {
		if err := checkCron(s.spec); err != nil {
			return bad(s.key, "%q: %v", s.spec, err)
		}
	}
	for i, m := range c.Admin.Emails {
		if a, err := mail.ParseAddress(m); err != nil || !strings.Contains(a.Address, "@") {
			return bad(fmt.Sprintf("admin.emails[%d]", i), "%q is not an email address", m)
		}
	}
	if _, _, err := net.SplitHostPort(c.Admin.Listen); err != nil && c.Admin.Listen != "off" {
		return bad("admin.listen", "%q is not host:port (or off)", c.Admin.Listen)
	}
	if _, err := mailer.ParseWindow(c.Admin.ExpectDropBy + "-24:00"); err != nil {
		return bad("admin.expect_drop_by", "%q is not a time like 08:00", c.Admin.ExpectDropBy)
	}
	for i, f := range c.Admin.ExpectedFeeds {
		if _, ok := etl.DefaultPatterns[f]; !ok {
			return bad(fmt.Sprintf("admin.expected_feeds[%d]", i), "%q is not a feed (stores, customers, purchases)", f)
		}
	}
	if s := c.Admin.SmallDropShare; s < 0 || s >= 1 {
		return bad("admin.small_drop_share", "must be a share from 0 (off) to below 1")
	}
	if c.Backup.Keep < 0 || c.Retention.CustomersMonths < 0 || c.Retention.AnswersMonths < 0 {
		return bad("backup.keep", "backup.keep and retention months must not be negative")
	}
	if c.SpoolKeepDays < 0 {
		return bad("spool_keep_days", "must not be negative")
	}
	if c.MaxFileMB < 0 {
		return bad("max_file_mb", "must not be negative")
	}
	if t := c.Survey.Alerts.Threshold; t < 1 || t > 5 {
		return bad("survey.alerts.threshold", "must be a rating from 1 to 5")
	}
	for i, m := range c.Survey.Alerts.Groups {
		if a, err := mail.ParseAddress(m); err != nil || !strings.Contains(a.Address, "@") {
			return bad(fmt.Sprintf("survey.alerts.groups[%d]", i), "%q is not an email address", m)
		}
	}
	if c.Survey.PerIPRate < 0 {
		return bad("survey.per_ip_rate", "must not be negative")
	}
	for i, m := range c.Reports.Managers {
		if a, err := mail.ParseAddress(m); err != nil || !strings.Contains(a.Address, "@") {
			return bad(fmt.Sprintf("reports.managers[%d]", i), "%q is not an email address", m)
		}
	}
	return nil
}

// checkCron parses a five-field cron expression; robfig/cron panics on
// some malformed specs (robfig/cron#554), so the parse is guarded.
func checkCron(spec string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("not a cron expression: %v", r)
		}
	}()
	if strings.Contains(spec, "TZ=") {
		return errors.New("no TZ= prefix: schedules use the timezone key")
	}
	_, err = cron.ParseStandard(spec)
	return err
}

// Location returns the configured time zone.
func (c *Config) Location() *time.Location {
	loc, err := time.LoadLocation(c.Timezone)
	if err != nil {
		return time.UTC // Validate has refused this already
	}
	return loc
}

// secret reads a secret from an environment variable or a file.
func secret(key, env, file string) (string, error) {
	switch {
	case env != "":
		v := os.Getenv(env)
		if v == "" {
			return "", fmt.Errorf("%s_env: environment variable %s is empty or not set", key, env)
		}
		return v, nil
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("%s_file: %w", key, err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	return "", nil
}

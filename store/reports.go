package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Period is a half-open interval of time [From, To).
type Period struct {
	From, To time.Time
}

func (p Period) args() (int64, int64) { return p.From.UTC().Unix(), p.To.UTC().Unix() }

// Scope limits report figures to some stores: nil means the whole chain.
type Scope []string

// sql returns the scope as a JSON array for "? = '[]' OR store_code IN
// (SELECT value FROM json_each(?))", which matches everything when empty.
func (sc Scope) sql() string {
	if len(sc) == 0 {
		return "[]"
	}
	b, _ := json.Marshal([]string(sc))
	return string(b)
}

const inScope = `(? = '[]' OR store_code IN (SELECT value FROM json_each(?)))`

// SurveyStats are the survey figures of a period.
type SurveyStats struct {
	Sent        int64 // invitations sent in the period
	Bounced     int64 // of those, refused by the recipient's server
	Opened      int64 // of those, whose survey was opened from the email
	RatingSqSum int64 // sum of squared ratings, for confidence intervals
	Responses   int64 // answers received in the period
	RatingSum   int64 // sum of CSI ratings (1..5)
	NPSAnswers  int64 // answers with an NPS score
	Promoters   int64 // NPS 9..10
	Detractors  int64 // NPS 0..6
	Negative    int64 // answers rated 1..3 or with a negative category
}

// SurveyStats computes the survey figures of a period.
func (db *DB) SurveyStats(ctx context.Context, p Period, sc Scope) (SurveyStats, error) {
	var s SurveyStats
	from, to := p.args()
	j := sc.sql()
	err := db.read.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(status = 'bounced'), 0), count(opened_at) FROM invitations
		WHERE sent_at >= ? AND sent_at < ? AND `+inScope, from, to, j, j).Scan(&s.Sent, &s.Bounced, &s.Opened)
	if err != nil {
		return s, fmt.Errorf("survey stats: %w", err)
	}
	err = db.read.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(rating), 0), coalesce(sum(rating * rating), 0), count(nps),
		coalesce(sum(nps >= 9), 0), coalesce(sum(nps <= 6), 0),
		coalesce(sum(rating <= 3 OR EXISTS (SELECT 1 FROM response_categories c
			WHERE c.response_id = r.id AND c.tone = 'negative')), 0)
		FROM responses r WHERE created_at >= ? AND created_at < ? AND `+inScope, from, to, j, j).
		Scan(&s.Responses, &s.RatingSum, &s.RatingSqSum, &s.NPSAnswers, &s.Promoters, &s.Detractors, &s.Negative)
	if err != nil {
		return s, fmt.Errorf("survey stats: %w", err)
	}
	return s, nil
}

// StoreSurvey is one store's survey figures of a period.
type StoreSurvey struct {
	Code, Name, Region, Director string
	SurveyStats
}

// StoreSurveys computes the survey figures of a period for each store
// with invitations or answers in it.
func (db *DB) StoreSurveys(ctx context.Context, p Period, sc Scope) ([]StoreSurvey, error) {
	from, to := p.args()
	j := sc.sql()
	rows, err := db.read.QueryContext(ctx, `
		WITH inv AS (
			SELECT store_code, count(*) AS sent, sum(status = 'bounced') AS bounced FROM invitations
			WHERE sent_at >= ? AND sent_at < ? AND `+inScope+` GROUP BY store_code),
		ans AS (
			SELECT store_code, count(*) AS n, sum(rating) AS rs, sum(rating * rating) AS rs2, count(nps) AS npsn,
			       sum(nps >= 9) AS prom, sum(nps <= 6) AS det,
			       sum(rating <= 3 OR EXISTS (SELECT 1 FROM response_categories c
			           WHERE c.response_id = r.id AND c.tone = 'negative')) AS neg
			FROM responses r WHERE created_at >= ? AND created_at < ? AND `+inScope+` GROUP BY store_code),
		codes AS (SELECT store_code FROM inv UNION SELECT store_code FROM ans)
		SELECT k.store_code, coalesce(s.name, ''), coalesce(s.region, ''), coalesce(s.director_email, ''),
		       coalesce(inv.sent, 0), coalesce(inv.bounced, 0), coalesce(ans.n, 0), coalesce(ans.rs, 0), coalesce(ans.rs2, 0),
		       coalesce(ans.npsn, 0), coalesce(ans.prom, 0), coalesce(ans.det, 0), coalesce(ans.neg, 0)
		FROM codes k LEFT JOIN inv ON inv.store_code = k.store_code LEFT JOIN ans ON ans.store_code = k.store_code
		LEFT JOIN stores s ON s.code = k.store_code ORDER BY k.store_code`, from, to, j, j, from, to, j, j)
	if err != nil {
		return nil, fmt.Errorf("store survey stats: %w", err)
	}
	defer rows.Close()
	var out []StoreSurvey
	for rows.Next() {
		var s StoreSurvey
		if err := rows.Scan(&s.Code, &s.Name, &s.Region, &s.Director, &s.Sent, &s.Bounced, &s.Responses, &s.RatingSum,
			&s.RatingSqSum, &s.NPSAnswers, &s.Promoters, &s.Detractors, &s.Negative); err != nil {
			return nil, fmt.Errorf("store survey stats: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// NegativeComment is a negative answer with a comment, for the report.
type NegativeComment struct {
	At                   time.Time
	StoreCode, StoreName string
	TimeZone             string
	Rating               int
	NPS                  *int
	Categories           []string // the negative ones
	Comment              string
}

// NegativeComments returns a period's negative answers that have a
// comment, newest first, at most limit.
func (db *DB) NegativeComments(ctx context.Context, p Period, sc Scope, limit int) ([]NegativeComment, error) {
	from, to := p.args()
	j := sc.sql()
	rows, err := db.read.QueryContext(ctx, `
		SELECT r.created_at, r.store_code, coalesce(s.name, ''), coalesce(s.timezone, ''), r.rating, r.nps, r.comment,
		       coalesce((SELECT group_concat(category, ',') FROM response_categories c
		                 WHERE c.response_id = r.id AND c.tone = 'negative'), '')
		FROM responses r LEFT JOIN stores s ON s.code = r.store_code
		WHERE r.created_at >= ? AND r.created_at < ? AND r.comment <> '' AND (`+strings.ReplaceAll(inScope, "store_code", "r.store_code")+`)
		  AND (r.rating <= 3 OR EXISTS (SELECT 1 FROM response_categories c WHERE c.response_id = r.id AND c.tone = 'negative'))
		ORDER BY r.created_at DESC, r.id DESC LIMIT ?`, from, to, j, j, limit)
	if err != nil {
		return nil, fmt.Errorf("negative comments: %w", err)
	}
	defer rows.Close()
	var out []NegativeComment
	for rows.Next() {
		var c NegativeComment
		var at int64
		var nps sql.NullInt64
		var cats string
		if err := rows.Scan(&at, &c.StoreCode, &c.StoreName, &c.TimeZone, &c.Rating, &nps, &c.Comment, &cats); err != nil {
			return nil, fmt.Errorf("negative comments: %w", err)
		}
		c.At = time.Unix(at, 0).UTC()
		if nps.Valid {
			n := int(nps.Int64)
			c.NPS = &n
		}
		c.Categories = splitList(cats)
		out = append(out, c)
	}
	return out, rows.Err()
}

// Directors returns each director's stores, from the stores feed.
func (db *DB) Directors(ctx context.Context) (map[string][]string, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT director_email, code FROM stores WHERE director_email <> '' ORDER BY code`)
	if err != nil {
		return nil, fmt.Errorf("directors: %w", err)
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var d, code string
		if err := rows.Scan(&d, &code); err != nil {
			return nil, fmt.Errorf("directors: %w", err)
		}
		out[d] = append(out[d], code)
	}
	return out, rows.Err()
}

// FeedbackCounts counts answers of any period by category and tone, from
// the answers themselves; the report reads the roll-ups (MonthlyFeedback),
// which tests check against this.
func (db *DB) FeedbackCounts(ctx context.Context, p Period, sc Scope) (map[Feedback]int64, error) {
	from, to := p.args()
	j := sc.sql()
	rows, err := db.read.QueryContext(ctx, `SELECT c.category, c.tone, count(*)
		FROM response_categories c JOIN responses r ON r.id = c.response_id
		WHERE r.created_at >= ? AND r.created_at < ? AND (`+strings.ReplaceAll(inScope, "store_code", "r.store_code")+`)
		GROUP BY c.category, c.tone`, from, to, j, j)
	if err != nil {
		return nil, fmt.Errorf("feedback counts: %w", err)
	}
	defer rows.Close()
	out := map[Feedback]int64{}
	for rows.Next() {
		var f Feedback
		var n int64
		if err := rows.Scan(&f.Category, &f.Tone, &n); err != nil {
			return nil, fmt.Errorf("feedback counts: %w", err)
		}
		out[f] = n
	}
	return out, rows.Err()
}

// CategorySales are the sales of one product category in a period.
type CategorySales struct {
	Category   string
	RevenueKop int64 // sales lines (positive quantity)
	ReturnsKop int64 // return lines, as a positive amount
	Receipts   int64
	Lines      int64
}

// salesByCategoryQuery sums the lines of [?1, ?2) in scope ?3 (twice)
// by category.
var salesByCategoryQuery = `SELECT category,
	coalesce(sum(CASE WHEN qty_milli > 0 THEN sum_kop END), 0),
	coalesce(-sum(CASE WHEN qty_milli < 0 THEN sum_kop END), 0),
	count(DISTINCT store_code || char(31) || receipt), count(*)
	FROM ` + linesIn("p") + ` WHERE ` + linesAt("p") + ` AND ` + inScope + ` GROUP BY category ORDER BY category`

// SalesByCategory sums purchase lines of any period by product category,
// from the lines themselves; the report reads the roll-ups
// (MonthlySales), which tests check against this.
func (db *DB) SalesByCategory(ctx context.Context, p Period, sc Scope) ([]CategorySales, error) {
	from, to := p.args()
	j := sc.sql()
	rows, err := db.read.QueryContext(ctx, salesByCategoryQuery, from, to, j, j)
	if err != nil {
		return nil, fmt.Errorf("sales by category: %w", err)
	}
	defer rows.Close()
	var out []CategorySales
	for rows.Next() {
		var c CategorySales
		if err := rows.Scan(&c.Category, &c.RevenueKop, &c.ReturnsKop, &c.Receipts, &c.Lines); err != nil {
			return nil, fmt.Errorf("sales by category: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

package store

import (
	"context"
	"fmt"
	"time"
)

// Period is a half-open interval of time [From, To).
type Period struct {
	From, To time.Time
}

func (p Period) args() (int64, int64) { return p.From.UTC().Unix(), p.To.UTC().Unix() }

// SurveyStats are the survey figures of a period.
type SurveyStats struct {
	Sent       int64 // invitations sent in the period
	Responses  int64 // answers received in the period
	RatingSum  int64 // sum of CSI ratings (1..5)
	NPSAnswers int64 // answers with an NPS score
	Promoters  int64 // NPS 9..10
	Detractors int64 // NPS 0..6
	Negative   int64 // answers rated 1..3 or with a negative category
}

// SurveyStats computes the survey figures of a period.
func (db *DB) SurveyStats(ctx context.Context, p Period) (SurveyStats, error) {
	var s SurveyStats
	from, to := p.args()
	err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM invitations
		WHERE sent_at >= ? AND sent_at < ?`, from, to).Scan(&s.Sent)
	if err != nil {
		return s, fmt.Errorf("survey stats: %w", err)
	}
	err = db.read.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(rating), 0), count(nps),
		coalesce(sum(nps >= 9), 0), coalesce(sum(nps <= 6), 0),
		coalesce(sum(rating <= 3 OR EXISTS (SELECT 1 FROM response_categories c
			WHERE c.response_id = r.id AND c.tone = 'negative')), 0)
		FROM responses r WHERE created_at >= ? AND created_at < ?`, from, to).
		Scan(&s.Responses, &s.RatingSum, &s.NPSAnswers, &s.Promoters, &s.Detractors, &s.Negative)
	if err != nil {
		return s, fmt.Errorf("survey stats: %w", err)
	}
	return s, nil
}

// FeedbackCounts counts answers of a period by category and tone.
func (db *DB) FeedbackCounts(ctx context.Context, p Period) (map[Feedback]int64, error) {
	from, to := p.args()
	rows, err := db.read.QueryContext(ctx, `SELECT c.category, c.tone, count(*)
		FROM response_categories c JOIN responses r ON r.id = c.response_id
		WHERE r.created_at >= ? AND r.created_at < ? GROUP BY c.category, c.tone`, from, to)
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

// SalesByCategory sums purchase lines of a period by product category.
func (db *DB) SalesByCategory(ctx context.Context, p Period) ([]CategorySales, error) {
	from, to := p.args()
	rows, err := db.read.QueryContext(ctx, `SELECT category,
		coalesce(sum(CASE WHEN qty_milli > 0 THEN sum_kop END), 0),
		coalesce(-sum(CASE WHEN qty_milli < 0 THEN sum_kop END), 0),
		count(DISTINCT store_code || char(31) || receipt), count(*)
		FROM purchase_lines WHERE at >= ? AND at < ? GROUP BY category ORDER BY category`, from, to)
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

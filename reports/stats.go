package reports

import (
	"math"

	"github.com/otklik/otklik/store"
)

// Figures are the headline numbers of a set of answers, with 95%
// confidence intervals.
type Figures struct {
	Sent, Answers     int64
	Delivered, Opened int64   // sent less bounced; surveys opened from the email
	OpenRate          float64 // opened / delivered
	ResponseRate      float64 // answers / invitations sent
	CSI, CSIMoE       float64 // mean rating 1..5 and its margin of error
	NPS, NPSMoE       float64 // % promoters - % detractors, -100..100
	NegShare          float64 // share of answers that are negative
	Negative          int64
	MQI               float64 // management quality index, 0..100
}

// z95 is the normal quantile of a two-sided 95% interval.
const z95 = 1.959963984540054

// figures computes the headline numbers from raw counts; a figure
// without data is NaN.
//
// CSI is the mean rating, with margin z·s/√n. NPS is the share of
// promoters (9-10) minus the share of detractors (0-6), in points; its
// margin is z·√((p + d − (p − d)²)/n)·100, the standard error of a
// difference of two shares of one multinomial sample. The management
// quality index weighs the three things a store manager controls:
//
//	MQI = 100 × (0.4·(CSI − 1)/4 + 0.4·(NPS + 100)/200 + 0.2·(1 − negative share))
//
// so that 100 is every customer delighted and 0 every customer lost.
func figures(s store.SurveyStats) Figures {
	f := Figures{Sent: s.Sent, Answers: s.Responses, Negative: s.Negative,
		Delivered: s.Sent - s.Bounced, Opened: s.Opened, OpenRate: math.NaN(),
		ResponseRate: math.NaN(), CSI: math.NaN(), CSIMoE: math.NaN(), NPS: math.NaN(), NPSMoE: math.NaN(),
		NegShare: math.NaN(), MQI: math.NaN()}
	if s.Sent > 0 {
		f.ResponseRate = float64(s.Responses) / float64(s.Sent)
	}
	if f.Delivered > 0 {
		f.OpenRate = float64(f.Opened) / float64(f.Delivered)
	}
	if n := float64(s.Responses); n > 0 {
		f.CSI = float64(s.RatingSum) / n
		f.NegShare = float64(s.Negative) / n
		if n > 1 {
			variance := (float64(s.RatingSqSum) - n*f.CSI*f.CSI) / (n - 1)
			f.CSIMoE = z95 * math.Sqrt(math.Max(variance, 0)/n)
		}
	}
	if n := float64(s.NPSAnswers); n > 0 {
		p, d := float64(s.Promoters)/n, float64(s.Detractors)/n
		f.NPS = 100 * (p - d)
		f.NPSMoE = 100 * z95 * math.Sqrt(math.Max(p+d-(p-d)*(p-d), 0)/n)
	}
	if !math.IsNaN(f.CSI) && !math.IsNaN(f.NPS) {
		f.MQI = 100 * (0.4*(f.CSI-1)/4 + 0.4*(f.NPS+100)/200 + 0.2*(1-f.NegShare))
	}
	return f
}

// twoProportionP is the two-sided p-value of the z-test that two shares,
// k1 of n1 and k2 of n2, are the same; NaN when either sample is empty.
func twoProportionP(k1, n1, k2, n2 int64) float64 {
	if n1 == 0 || n2 == 0 {
		return math.NaN()
	}
	p1, p2 := float64(k1)/float64(n1), float64(k2)/float64(n2)
	p := float64(k1+k2) / float64(n1+n2)
	se := math.Sqrt(p * (1 - p) * (1/float64(n1) + 1/float64(n2)))
	if se == 0 {
		return 1
	}
	z := (p1 - p2) / se
	return math.Erfc(math.Abs(z) / math.Sqrt2)
}

package mailer

import (
	"testing"

	"golang.org/x/time/rate"
)

// TestAllowNow: a piece goes ahead only if every limit has a token now,
// and a limit that had one keeps it when another has none.
func TestAllowNow(t *testing.T) {
	perSecond := rate.NewLimiter(1, 1)
	perHour := rate.NewLimiter(rate.Limit(1.0/3600), 1)
	if !allowNow([]*rate.Limiter{perSecond, perHour}) {
		t.Fatal("refused with a token in each limit")
	}
	if allowNow([]*rate.Limiter{perSecond}) {
		t.Fatal("allowed twice within a second at 1/s")
	}
	perSecond = rate.NewLimiter(1, 1)
	if allowNow([]*rate.Limiter{perSecond, perHour}) {
		t.Fatal("allowed with the hourly cap used up")
	}
	if tokens := perSecond.Tokens(); tokens < 0.99 {
		t.Fatalf("the per-second limit lost its token (%.2f left)", tokens)
	}
	if !allowNow(nil) {
		t.Fatal("refused without limits")
	}
}

package sample

import (
	"math"
	"testing"
)

func TestExpNeg(t *testing.T) {
	const tol = 1e-8 // relative to math.Exp
	worst := 0.0
	for x := -87.0; x <= 0; x += 0.000731 {
		got, want := expNeg(x), math.Exp(x)
		e := math.Abs(got/want - 1)
		worst = max(worst, e)
		if e > tol {
			t.Fatalf("expNeg(%v) = %v, math.Exp %v: relative error %g > %g", x, got, want, e, tol)
		}
	}
	for _, x := range []float64{0, math.Copysign(0, -1), -math.Ln2 / 2, -math.Ln2, -1e-12, -86.999} {
		got, want := expNeg(x), math.Exp(x)
		if e := math.Abs(got/want - 1); e > tol {
			t.Errorf("expNeg(%v) = %v, math.Exp %v: relative error %g", x, got, want, e)
		}
	}
	if got := expNeg(math.Inf(-1)); got != 0 {
		t.Errorf("expNeg(-Inf) = %v, want 0", got)
	}
	if got := expNeg(-100); got != 0 {
		t.Errorf("expNeg(-100) = %v, want 0 (flushed)", got)
	}
	t.Logf("worst relative error over [-87, 0]: %.3g", worst)
}

package profiles

import (
	"fmt"
	"math"
)

// Output is one rendition of a ladder fitted to a particular source.
type Output struct {
	Rung          Rung
	Width, Height int
	FrameRate     float64 // 0 = source rate
	ScaleFrom     int     // index in the returned slice of the output to scale from, -1 = decoded source
}

// epsilon absorbs float error from SAR arithmetic so an exact fit is not
// mistaken for an upscale.
const epsilon = 1e-6

// Resolve fits the ladder to a source. srcW/srcH are coded size, sarNum/sarDen
// the sample aspect ratio (0/0 or 1/1 = square), srcFPS the source frame rate
// (0 if unknown). Rungs larger than the source are skipped; a source smaller
// than every rung still gets one output, the smallest rung at source size.
func (l *Ladder) Resolve(srcW, srcH, sarNum, sarDen int, srcFPS float64) ([]Output, error) {
	if srcW <= 0 || srcH <= 0 {
		return nil, fmt.Errorf("profiles: resolve %q: bad source size %dx%d", l.Name, srcW, srcH)
	}
	if len(l.Rungs) == 0 {
		return nil, fmt.Errorf("profiles: resolve %q: ladder has no rungs", l.Name)
	}

	// Renditions have square pixels, so anamorphic sources (720x576 at 64:45)
	// are fitted by their display size.
	dispW, dispH := float64(srcW), float64(srcH)
	if sarNum > 0 && sarDen > 0 {
		dispW = dispW * float64(sarNum) / float64(sarDen)
	}
	src := frame{
		short:    math.Min(dispW, dispH),
		aspect:   math.Max(dispW, dispH) / math.Min(dispW, dispH),
		portrait: dispH > dispW,
		maxW:     evenFloor(dispW),
		maxH:     evenFloor(dispH),
		fps:      srcFPS,
	}

	var outs []Output
	for _, r := range l.Rungs {
		if float64(r.Height) > src.short+epsilon {
			continue // never upscale
		}
		outs = append(outs, src.fit(r, float64(r.Height)))
	}
	if len(outs) == 0 {
		outs = append(outs, src.fit(l.Rungs[len(l.Rungs)-1], src.short))
	}

	for i := range outs {
		outs[i].ScaleFrom = -1
		if l.Cascade == CascadeSource || i == 0 {
			continue
		}
		// Scaling from the next larger rendition is cheaper than from the
		// source, but only if that rendition kept every frame this one needs
		// and has more pixels in both directions to scale down from.
		prev, cur := outs[i-1], outs[i]
		if rate(prev.FrameRate) >= rate(cur.FrameRate) && prev.Width > cur.Width && prev.Height > cur.Height {
			outs[i].ScaleFrom = i - 1
		}
	}
	return outs, nil
}

// frame is the source as Resolve sees it: display geometry and frame rate.
type frame struct {
	short, aspect float64 // short side and long/short ratio, after SAR
	portrait      bool
	maxW, maxH    int // largest even output that is not an upscale
	fps           float64
}

// fit sizes rung r with the given short side to the source aspect.
func (f frame) fit(r Rung, short float64) Output {
	long := short * f.aspect
	if r.Width > 0 && long > float64(r.Width) {
		long = float64(r.Width)
		short = long / f.aspect
	}
	w, h := evenRound(long), evenRound(short)
	if f.portrait {
		w, h = h, w
	}
	out := Output{Rung: r, Width: min(w, f.maxW), Height: min(h, f.maxH)}
	if r.MaxFrameRate > 0 && f.fps > r.MaxFrameRate {
		out.FrameRate = r.MaxFrameRate
	}
	return out
}

// rate orders frame rates with 0 (source rate) as the highest.
func rate(fps float64) float64 {
	if fps == 0 {
		return math.Inf(1)
	}
	return fps
}

// Encoders need even dimensions for 4:2:0 chroma.
func evenRound(x float64) int { return max(2, 2*int(math.Round(x/2))) }
func evenFloor(x float64) int { return max(2, int(x+epsilon)&^1) }

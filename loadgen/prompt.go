package loadgen

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
)

// words are what prompt texts are made of: common English words, so that
// every tokenizer splits them into a few tokens each.
var words = strings.Fields(`
the a one little big old young happy sad bright dark quiet loud small tall
girl boy cat dog bird fish tree house garden river hill road town park
school friend mother father sister brother teacher king queen dragon ship
ball box book cake apple flower stone star moon sun cloud rain snow wind
ran jumped walked played found saw heard made gave took looked smiled
laughed cried sang danced slept ate drank opened closed climbed built
and but so then when because after before while until if or
red blue green yellow white black warm cold soft hard fast slow
in on under over near far inside outside behind across through
day night morning evening summer winter spring autumn story song game
`)

// promptText returns n words picked by rng, starting with a number that
// makes two requests' texts differ from their first token.
func promptText(rng *rand.Rand, n int, id uint64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d.", id)
	for range n {
		b.WriteByte(' ')
		b.WriteString(words[rng.IntN(len(words))])
	}
	return b.String()
}

// prompts makes prompts of exactly promptTokens token ids: the shared ones
// (the same for every request, to exercise the prefix cache) and then
// distinct ones per request. It sizes them with the server's tokenizer.
type prompts struct {
	c        *client
	seed     uint64
	total    int
	prefix   []int32 // the shared prefix (with BOS); nil when none
	addBOSTo bool    // whether the distinct part starts the prompt (then it gets the BOS)
}

func newPrompts(ctx context.Context, c *client, seed uint64, total, shared int) (*prompts, error) {
	p := &prompts{c: c, seed: seed, total: total, addBOSTo: shared == 0}
	if shared > 0 {
		rng := rand.New(rand.NewPCG(seed, 0x5eed))
		ids, err := p.tokens(ctx, rng, shared, 0, true)
		if err != nil {
			return nil, fmt.Errorf("shared prefix: %w", err)
		}
		p.prefix = ids
	}
	return p, nil
}

// get returns request i's prompt.
func (p *prompts) get(ctx context.Context, i uint64) ([]int32, error) {
	rng := rand.New(rand.NewPCG(p.seed, i+1))
	rest, err := p.tokens(ctx, rng, p.total-len(p.prefix), i+1, p.addBOSTo)
	if err != nil {
		return nil, err
	}
	return append(append(make([]int32, 0, p.total), p.prefix...), rest...), nil
}

// tokens tokenizes texts of growing length until one has at least n
// tokens, and returns its first n.
func (p *prompts) tokens(ctx context.Context, rng *rand.Rand, n int, id uint64, addSpecial bool) ([]int32, error) {
	nWords := n // a word is at least one token, so this is usually enough
	for range 6 {
		ids, err := p.c.tokenize(ctx, promptText(rng, nWords, id), addSpecial)
		if err != nil {
			return nil, err
		}
		if len(ids) >= n {
			return ids[:n], nil
		}
		nWords *= 2
	}
	return nil, fmt.Errorf("a text of %d words is still shorter than %d tokens", nWords/2, n)
}

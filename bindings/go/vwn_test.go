// Tests of the Go binding against a real model ($VWN_TEST_MODEL) and the outputs of the C command
// line tool on it ($VWN_TEST_REF, written by scripts/test_bindings.sh): logits to 1e-6, greedy
// generation and tokenization identical, errors with the library's message, and one model shared
// by four goroutines giving the same results as alone (run with -race).
package vwn_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"

	vwn "github.com/libvwn/vwn-go"
)

func modelPath(t *testing.T) string {
	t.Helper()
	p := os.Getenv("VWN_TEST_MODEL")
	if p == "" {
		t.Skip("VWN_TEST_MODEL is not set (scripts/test_bindings.sh sets it)")
	}
	return p
}

func refDir(t *testing.T) string {
	t.Helper()
	d := os.Getenv("VWN_TEST_REF")
	if d == "" {
		t.Skip("VWN_TEST_REF is not set (scripts/test_bindings.sh sets it)")
	}
	return d
}

func readRef(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(refDir(t), name))
	if err != nil {
		t.Fatalf("reference: %v", err)
	}
	return b
}

func parseIDs(t *testing.T, s string) []int32 {
	t.Helper()
	var ids []int32
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' || r == '\r' }) {
		v, err := strconv.ParseInt(f, 10, 32)
		if err != nil {
			t.Fatalf("bad token id %q", f)
		}
		ids = append(ids, int32(v))
	}
	return ids
}

func nPredict(t *testing.T) int {
	n, err := strconv.Atoi(strings.TrimSpace(string(readRef(t, "n_predict.txt"))))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// readNpy parses a version 1/2/3 .npy file of '<f4' data in C order.
func readNpy(t *testing.T, b []byte) ([]int, []float32) {
	t.Helper()
	if len(b) < 10 || string(b[:6]) != "\x93NUMPY" {
		t.Fatal("not a .npy file")
	}
	var hlen, start int
	switch b[6] {
	case 1:
		hlen, start = int(binary.LittleEndian.Uint16(b[8:10])), 10
	case 2, 3:
		hlen, start = int(binary.LittleEndian.Uint32(b[8:12])), 12
	default:
		t.Fatalf("unsupported .npy version %d", b[6])
	}
	header := string(b[start : start+hlen])
	if !strings.Contains(header, "'descr': '<f4'") || !strings.Contains(header, "'fortran_order': False") {
		t.Fatalf("unsupported .npy header %s", header)
	}
	i := strings.Index(header, "'shape': (")
	if i < 0 {
		t.Fatalf("no shape in %s", header)
	}
	dims := header[i+len("'shape': ("):]
	dims = dims[:strings.Index(dims, ")")]
	var shape []int
	n := 1
	for _, f := range strings.Split(dims, ",") {
		if f = strings.TrimSpace(f); f != "" {
			v, _ := strconv.Atoi(f)
			shape = append(shape, v)
			n *= v
		}
	}
	body := b[start+hlen:]
	if len(body) != 4*n {
		t.Fatalf(".npy body has %d bytes for shape %v", len(body), shape)
	}
	data := make([]float32, n)
	for k := range data {
		data[k] = math.Float32frombits(binary.LittleEndian.Uint32(body[4*k:]))
	}
	return shape, data
}

func load(t *testing.T) *vwn.Model {
	t.Helper()
	m, err := vwn.Load(modelPath(t))
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("model close: %v", err)
		}
	})
	return m
}

func smallCtx(t *testing.T, m *vwn.Model, mtp bool) *vwn.Context {
	t.Helper()
	p := vwn.DefaultContextParams()
	p.NCtx, p.NThreads, p.MTP = 256, 1, mtp
	c, err := m.NewContext(&p)
	if err != nil {
		t.Fatalf("context: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func greedy(t *testing.T, m *vwn.Model, prompt string, n, spec int) string {
	t.Helper()
	c := smallCtx(t, m, spec != 0)
	defer c.Close()
	o := vwn.DefaultGenerateOptions()
	o.NPredict, o.SpecDepth = n, spec
	var out bytes.Buffer
	if _, err := c.Generate(prompt, &o, &out); err != nil {
		t.Fatalf("generate: %v", err)
	}
	return out.String()
}

func TestModelInfo(t *testing.T) {
	m := load(t)
	info := m.Info()
	if info.NVocab <= 0 || info.NEmbd <= 0 || info.NLayer <= 0 || m.NVocab() != info.NVocab {
		t.Fatalf("bad info %+v", info)
	}
	if v, ok := m.Meta("general.architecture"); !ok || v != "vwn" {
		t.Fatalf("general.architecture = %q, %v", v, ok)
	}
	if _, ok := m.Meta("no.such.key"); ok {
		t.Fatal("absent key found")
	}
	if len(m.MetaKeys()) == 0 || vwn.Version() == "" {
		t.Fatal("no metadata keys or version")
	}
}

func TestLogitsMatchCLI(t *testing.T) {
	m := load(t)
	tokens := parseIDs(t, string(readRef(t, "logits_tokens.txt")))
	shape, want := readNpy(t, readRef(t, "logits.npy"))
	v := m.NVocab()
	if !reflect.DeepEqual(shape, []int{len(tokens), v}) {
		t.Fatalf("shape %v, want [%d %d]", shape, len(tokens), v)
	}
	p := vwn.DefaultContextParams()
	p.NCtx, p.LogitsAll = 256, true
	c, err := m.NewContext(&p)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Decode(tokens); err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	var row []float32
	for i := range tokens {
		if row, err = c.LogitsInto(i, row); err != nil {
			t.Fatalf("logits %d: %v", i, err)
		}
		for k, x := range row {
			worst = math.Max(worst, math.Abs(float64(x-want[i*v+k])))
		}
	}
	if worst > 1e-6 {
		t.Fatalf("largest logit difference to the CLI: %g", worst)
	}
	last, _ := c.Logits(-1)
	if !reflect.DeepEqual(last, row) {
		t.Fatal("Logits(-1) is not the last position")
	}
}

func TestGreedyMatchesVwnRun(t *testing.T) {
	m := load(t)
	prompt := string(readRef(t, "prompt.txt"))
	cli := string(readRef(t, "run_greedy.txt")) // the CLI echoes the prompt, then the continuation
	n := nPredict(t)
	got := greedy(t, m, prompt, n, 0)
	if prompt+got != cli {
		t.Fatalf("binding %q\ncli     %q", prompt+got, cli)
	}
	// the same with an explicit greedy sampler, and the stats
	s, err := vwn.GreedySampler()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !s.IsGreedy() {
		t.Fatal("greedy sampler is not greedy")
	}
	c := smallCtx(t, m, false)
	o := vwn.DefaultGenerateOptions()
	o.NPredict, o.Sampler = n, s
	var out strings.Builder
	st, err := c.Generate(prompt, &o, &out)
	if err != nil || out.String() != got || st.NGenerated != n || st.StopReason != vwn.StopBudget {
		t.Fatalf("with sampler: %q %+v %v", out.String(), st, err)
	}
}

func TestSpeculativeIsIdenticalWhenGreedy(t *testing.T) {
	m := load(t)
	if m.Info().MTPDepth == 0 {
		t.Skip("the test model has no MTP modules")
	}
	prompt := string(readRef(t, "prompt.txt"))
	n := nPredict(t)
	plain := greedy(t, m, prompt, n, 0)
	for d := 1; d <= m.Info().MTPDepth; d++ {
		if got := greedy(t, m, prompt, n, d); got != plain {
			t.Fatalf("SpecDepth %d: %q, want %q", d, got, plain)
		}
	}
	if got := greedy(t, m, prompt, n, -1); got != plain {
		t.Fatalf("adaptive: %q, want %q", got, plain)
	}
	c := smallCtx(t, m, true)
	o := vwn.DefaultGenerateOptions()
	o.NPredict, o.SpecDepth = n, 1
	st, err := c.Generate(prompt, &o, nil)
	if err != nil || st.NVerify == 0 || st.NDrafted == 0 {
		t.Fatalf("speculative stats %+v, %v", st, err)
	}
}

func TestTokenizeMatchesCLI(t *testing.T) {
	m := load(t)
	prompt := string(readRef(t, "prompt.txt"))
	want := parseIDs(t, string(readRef(t, "tokenize.txt")))
	ids, err := m.Tokenize(prompt, true, false)
	if err != nil || !reflect.DeepEqual(ids, want) {
		t.Fatalf("tokenize: %v %v, want %v", ids, err, want)
	}
	text, err := m.Detokenize(ids, true)
	if err != nil || text != prompt {
		t.Fatalf("detokenize: %q %v", text, err)
	}
	var pieces strings.Builder
	for _, id := range ids {
		p, err := m.TokenToPiece(id, false)
		if err != nil {
			t.Fatal(err)
		}
		pieces.WriteString(p)
	}
	if pieces.String() != prompt {
		t.Fatalf("pieces %q", pieces.String())
	}
	if ids, err := m.Tokenize("", false, false); err != nil || len(ids) != 0 {
		t.Fatalf("empty text: %v %v", ids, err)
	}
}

type failingWriter struct{ n int }

func (w *failingWriter) Write(p []byte) (int, error) {
	w.n++
	if w.n == 3 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

func TestWriterErrorStopsGeneration(t *testing.T) {
	m := load(t)
	c := smallCtx(t, m, false)
	o := vwn.DefaultGenerateOptions()
	o.NPredict = 20
	w := &failingWriter{}
	st, err := c.Generate("abc", &o, w)
	if err == nil || err.Error() != "disk full" || st.StopReason != vwn.StopCallback || w.n != 3 {
		t.Fatalf("err %v, stats %+v, writes %d", err, st, w.n)
	}
}

type panickingWriter struct{}

func (panickingWriter) Write(p []byte) (int, error) { panic("boom") }

func TestWriterPanicIsReraisedAfterTheCCall(t *testing.T) {
	m := load(t)
	c := smallCtx(t, m, false)
	o := vwn.DefaultGenerateOptions()
	o.NPredict = 8
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Fatalf("recovered %v", r)
			}
		}()
		c.Generate("abc", &o, panickingWriter{})
	}()
	if err := c.Clear(); err != nil { // still usable, not locked
		t.Fatal(err)
	}
	if _, err := c.Generate("abc", &o, nil); err != nil {
		t.Fatal(err)
	}
}

func TestBadPath(t *testing.T) {
	_, err := vwn.Load("/nonexistent/dir/model.gguf")
	var e *vwn.Error
	if !errors.As(err, &e) || e.Status != vwn.ErrIO || !errors.Is(err, vwn.ErrIO) {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(e.Message, "/nonexistent/dir/model.gguf") || !strings.HasPrefix(err.Error(), "VWN_ERR_IO") {
		t.Fatalf("message %q", err.Error())
	}
	if errors.Is(err, vwn.ErrTruncated) {
		t.Fatal("errors.Is matched another status")
	}
}

func TestCorruptFiles(t *testing.T) {
	b, err := os.ReadFile(modelPath(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	trunc := filepath.Join(dir, "truncated.gguf")
	os.WriteFile(trunc, b[:len(b)/2], 0o644)
	_, err = vwn.Load(trunc)
	if !errors.Is(err, vwn.ErrTruncated) && !errors.Is(err, vwn.ErrBadFormat) {
		t.Fatalf("truncated: %v", err)
	}
	var e *vwn.Error
	if !errors.As(err, &e) || e.Message == "" {
		t.Fatalf("no message: %v", err)
	}
	text := filepath.Join(dir, "not.gguf")
	os.WriteFile(text, []byte("this is not a GGUF file at all, just some text"), 0o644)
	if _, err = vwn.Load(text); !errors.Is(err, vwn.ErrBadMagic) {
		t.Fatalf("not gguf: %v", err)
	}
}

func TestOutOfRangeTokens(t *testing.T) {
	m := load(t)
	v := int32(m.NVocab())
	c := smallCtx(t, m, false)
	err := c.Decode([]int32{1, v, 2})
	var e *vwn.Error
	if !errors.As(err, &e) || e.Status != vwn.ErrTokenOutOfRange || !strings.Contains(e.Message, fmt.Sprint(v)) {
		t.Fatalf("decode: %v", err)
	}
	if c.Len() != 0 {
		t.Fatal("tokens were appended")
	}
	if _, err := m.Detokenize([]int32{0, v + 5}, false); !errors.Is(err, vwn.ErrTokenOutOfRange) {
		t.Fatalf("detokenize: %v", err)
	}
	if _, err := m.TokenToPiece(-3, false); !errors.Is(err, vwn.ErrTokenOutOfRange) {
		t.Fatalf("token_to_piece: %v", err)
	}
	if _, err := c.Logits(-1); err == nil {
		t.Fatal("logits before any decode")
	}
	if _, err := c.Generate("a\x00b", nil, nil); !errors.Is(err, vwn.ErrInvalidArg) {
		t.Fatalf("prompt with a NUL byte: %v", err)
	}
}

func TestSpeculationWithoutMTP(t *testing.T) {
	m := load(t)
	c := smallCtx(t, m, false)
	o := vwn.DefaultGenerateOptions()
	o.NPredict, o.SpecDepth = 4, 1
	if _, err := c.Generate("abc", &o, nil); !errors.Is(err, vwn.ErrNoMTP) {
		t.Fatalf("got %v", err)
	}
}

func TestCloseOrderAndUseAfterClose(t *testing.T) {
	m, err := vwn.Load(modelPath(t))
	if err != nil {
		t.Fatal(err)
	}
	c, err := m.NewContext(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); !errors.Is(err, vwn.ErrInvalidArg) {
		t.Fatalf("closing a model with an open context: %v", err)
	}
	c.Close()
	c.Close() // twice is a no-op
	if err := c.Decode([]int32{1}); !errors.Is(err, vwn.ErrBadHandle) {
		t.Fatalf("decode after close: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.NewContext(nil); !errors.Is(err, vwn.ErrBadHandle) {
		t.Fatalf("context of a closed model: %v", err)
	}
}

func TestStateRoundTrip(t *testing.T) {
	m := load(t)
	a := smallCtx(t, m, false)
	ids, _ := m.Tokenize("state", true, false)
	if err := a.Decode(ids); err != nil {
		t.Fatal(err)
	}
	saved, err := a.StateSave()
	if err != nil {
		t.Fatal(err)
	}
	b := smallCtx(t, m, false)
	if err := b.StateLoad(saved); err != nil {
		t.Fatal(err)
	}
	a.Decode([]int32{7})
	b.Decode([]int32{7})
	la, _ := a.Logits(-1)
	lb, _ := b.Logits(-1)
	if !reflect.DeepEqual(la, lb) || !reflect.DeepEqual(a.Tokens(), b.Tokens()) {
		t.Fatal("restored state differs")
	}
}

// kvF16RelTol bounds max|f16 - f32| / max|logit| of f16 KV caches, which round keys and values to
// fp16. Measured on the test model of scripts/test_bindings.sh (f32 weights) with
// logits_tokens.txt: 3.6e-4 (main), 5.5e-4 and 4.8e-4 (MTP modules 1 and 2); other f32 models and
// prompts give up to 8e-4. The tolerance is ~6-9x that.
const kvF16RelTol = 5e-3

// kvLogits decodes tokens in a context with the given KV cache type and returns every main logit
// and then every logit of each MTP module.
func kvLogits(t *testing.T, m *vwn.Model, tokens []int32, kv vwn.KVType) [][]float32 {
	t.Helper()
	p := vwn.DefaultContextParams()
	p.NCtx, p.NThreads, p.LogitsAll, p.KVType = 256, 1, true, kv
	c, err := m.NewContext(&p)
	if err != nil {
		t.Fatalf("context (%v): %v", kv, err)
	}
	defer c.Close()
	if got := c.Params().KVType; got != kv {
		t.Fatalf("Params().KVType = %v, want %v", got, kv)
	}
	if err := c.Decode(tokens); err != nil {
		t.Fatal(err)
	}
	out := make([][]float32, 1+m.Info().MTPDepth)
	for i := range tokens {
		row, err := c.Logits(i)
		if err != nil {
			t.Fatal(err)
		}
		out[0] = append(out[0], row...)
	}
	for j := 1; j <= m.Info().MTPDepth; j++ {
		for i := 0; i < len(tokens)-j; i++ {
			row, err := c.MTPLogits(j, i)
			if err != nil {
				t.Fatalf("MTP %d logits %d: %v", j, i, err)
			}
			out[j] = append(out[j], row...)
		}
	}
	o := vwn.DefaultGenerateOptions()
	o.NPredict = 8
	if _, err := c.GenerateTokens(nil, &o, io.Discard); err != nil { // generation runs too
		t.Fatalf("generate (%v): %v", kv, err)
	}
	return out
}

// checkKVClose checks max|got - f32s| / max|f32s| of each module's logits against tol, and that
// got differs from f32s.
func checkKVClose(t *testing.T, f32s, got [][]float32, tol float64, what string) {
	t.Helper()
	if len(f32s) != len(got) {
		t.Fatalf("%d and %d modules", len(f32s), len(got))
	}
	for k := range f32s {
		if len(f32s[k]) != len(got[k]) || len(f32s[k]) == 0 {
			t.Fatalf("module %d: %d and %d logits", k, len(f32s[k]), len(got[k]))
		}
		diff, scale := 0.0, 0.0
		for i, a := range f32s[k] {
			b := float64(got[k][i])
			if math.IsNaN(b) || math.IsInf(b, 0) {
				t.Fatalf("module %d: logit %d is %v", k, i, b)
			}
			diff = math.Max(diff, math.Abs(float64(a)-b))
			scale = math.Max(scale, math.Abs(float64(a)))
		}
		t.Logf("kv %s vs f32, module %d: max diff %.3g, max|logit| %.3g, rel %.3g", what, k, diff, scale, diff/scale)
		// > 0: the setting reached the library (an ignored field would give identical logits)
		if !(diff > 0 && diff < tol*scale) {
			t.Fatalf("%s, module %d: max diff %g, max|logit| %g", what, k, diff, scale)
		}
	}
}

func TestKVTypeF16IsCloseToF32(t *testing.T) {
	m := load(t)
	tokens := parseIDs(t, string(readRef(t, "logits_tokens.txt")))
	checkKVClose(t, kvLogits(t, m, tokens, vwn.KVTypeF32), kvLogits(t, m, tokens, vwn.KVTypeF16), kvF16RelTol, "f16")
}

// demoPath is models/demo.gguf of the source tree: a trained model with Q8_0 matrices and head
// size 32, which the q8_0 KV cache needs (the test model of scripts/test_bindings.sh has head
// size 4). The test skips when it is not there.
func demoPath(t *testing.T) string {
	t.Helper()
	p := filepath.Join("..", "..", "models", "demo.gguf")
	if _, err := os.Stat(p); err != nil {
		t.Skipf("%s is not there: %v", p, err)
	}
	return p
}

func loadDemo(t *testing.T) *vwn.Model {
	t.Helper()
	m, err := vwn.Load(demoPath(t))
	if err != nil {
		t.Fatalf("load demo: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("demo close: %v", err)
		}
	})
	return m
}

// kvQ8_0RelTol bounds max|q8_0 - f32| / max|logit| of q8_0 KV caches, which quantize keys and
// values per 32 values (an fp16 scale and 32 int8): ~16x the rounding error of fp16 per value.
// They need a head size that is a multiple of 32, so they are measured on models/demo.gguf (head
// size 32, Q8_0 matrices) with kvDemoTokens, one thread, over the scalar, AVX2 and AVX-512
// kernels: 9.1e-3 (main), 8.3e-3..8.6e-3 (MTP 1), 9.1e-3..1.2e-2 (MTP 2). (f16 gives
// 5.4e-3..8.9e-3 there, the demo's Q8_0 matrices dominating both; on random f32-weight models of
// head size 32, where f16 gives 2.5e-4..6.6e-4, q8_0 gives 7.9e-3..2.4e-2.) The tolerance is ~4x
// the largest.
const kvQ8_0RelTol = 5e-2

// kvDemoTokens are the tokens of logits_tokens.txt in scripts/test_bindings.sh.
var kvDemoTokens = []int32{3, 1, 4, 1, 5, 9, 2, 6, 53, 58, 97, 100, 255, 0, 32}

func TestKVTypeQ8_0IsCloseToF32(t *testing.T) {
	m := loadDemo(t)
	if m.Info().HeadDim%32 != 0 {
		t.Fatalf("demo head size %d", m.Info().HeadDim)
	}
	q8s := kvLogits(t, m, kvDemoTokens, vwn.KVTypeQ8_0)
	checkKVClose(t, kvLogits(t, m, kvDemoTokens, vwn.KVTypeF32), q8s, kvQ8_0RelTol, "q8_0")
	if reflect.DeepEqual(q8s, kvLogits(t, m, kvDemoTokens, vwn.KVTypeF16)) {
		t.Fatal("q8_0 logits equal the f16 ones")
	}
}

func TestKVTypeQ8_0NeedsHeadSizeMultipleOf32(t *testing.T) {
	m := load(t)
	if m.Info().HeadDim%32 == 0 {
		t.Skipf("the test model's head size is %d", m.Info().HeadDim)
	}
	p := vwn.DefaultContextParams()
	p.NCtx, p.KVType = 64, vwn.KVTypeQ8_0
	c, err := m.NewContext(&p)
	if !errors.Is(err, vwn.ErrUnsupported) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("q8_0 with head size %d: %v, want ErrUnsupported", m.Info().HeadDim, err)
	}
	if !strings.Contains(err.Error(), "kv_type") {
		t.Fatalf("the message does not name kv_type: %v", err)
	}
}

func TestKVTypeParamsRoundTrip(t *testing.T) {
	if got := vwn.DefaultContextParams().KVType; got != vwn.KVTypeF32 {
		t.Fatalf("default KVType %v, want f32", got)
	}
	for _, kv := range []vwn.KVType{vwn.KVTypeF32, vwn.KVTypeF16, vwn.KVTypeQ8_0} {
		if back, err := vwn.ParseKVType(kv.String()); err != nil || back != kv {
			t.Fatalf("ParseKVType(%q) = %v, %v", kv.String(), back, err)
		}
	}
	if kv, err := vwn.ParseKVType("F16"); err != nil || kv != vwn.KVTypeF16 {
		t.Fatalf("ParseKVType(F16) = %v, %v", kv, err)
	}
	if kv, err := vwn.ParseKVType("Q8_0"); err != nil || kv != vwn.KVTypeQ8_0 || kv.String() != "q8_0" {
		t.Fatalf("ParseKVType(Q8_0) = %v, %v", kv, err)
	}
	if vwn.KVTypeQ8_0 != 8 { // VWN_TYPE_Q8_0
		t.Fatalf("KVTypeQ8_0 = %d", int32(vwn.KVTypeQ8_0))
	}
	roundTrip := func(m *vwn.Model, kv vwn.KVType) {
		p := vwn.DefaultContextParams()
		p.NCtx, p.NBatch, p.NThreads, p.KVType = 64, 64, 1, kv
		c, err := m.NewContext(&p)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Params(); got != p {
			t.Fatalf("Params() = %+v, want %+v", got, p)
		}
		c.Close()
		if got := c.Params(); got != (vwn.ContextParams{}) {
			t.Fatalf("Params() of a closed context = %+v", got)
		}
	}
	m := load(t)
	for _, kv := range []vwn.KVType{vwn.KVTypeF32, vwn.KVTypeF16} {
		roundTrip(m, kv)
	}
	roundTrip(loadDemo(t), vwn.KVTypeQ8_0) // q8_0 needs a head size that is a multiple of 32
}

func TestKVTypeInvalid(t *testing.T) {
	for _, s := range []string{"q4_0", "q8", "q8_1", "bf16", "f64", "", "fp16"} {
		if _, err := vwn.ParseKVType(s); !errors.Is(err, vwn.ErrInvalidArg) {
			t.Fatalf("ParseKVType(%q): %v, want ErrInvalidArg", s, err)
		}
	}
	m := load(t)
	for _, kv := range []vwn.KVType{30, -1, 2, 3} { // BF16, nonsense, Q4_0 and Q4_1: the library refuses them
		p := vwn.DefaultContextParams()
		p.NCtx, p.KVType = 64, kv
		c, err := m.NewContext(&p)
		if !errors.Is(err, vwn.ErrInvalidArg) {
			if c != nil {
				c.Close()
			}
			t.Fatalf("KVType %v: %v, want ErrInvalidArg", kv, err)
		}
		if !strings.Contains(err.Error(), "kv_type") {
			t.Fatalf("KVType %v: the message does not name kv_type: %v", kv, err)
		}
	}
}

// kvContext is a 256-position, one-thread context of m with a KV cache of type kv, closed with the test.
func kvContext(t *testing.T, m *vwn.Model, kv vwn.KVType) *vwn.Context {
	p := vwn.DefaultContextParams()
	p.NCtx, p.NThreads, p.KVType = 256, 1, kv
	c, err := m.NewContext(&p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestKVTypeStatesLoadAcrossTypes(t *testing.T) {
	// saved states are f32 whatever the cache type, and load into a context of either type
	m := load(t)
	ctx := func(kv vwn.KVType) *vwn.Context { return kvContext(t, m, kv) }
	h, f := ctx(vwn.KVTypeF16), ctx(vwn.KVTypeF32)
	ids, _ := m.Tokenize("state across types", true, false)
	if err := h.Decode(ids); err != nil {
		t.Fatal(err)
	}
	s, err := h.StateSave()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.StateLoad(s); err != nil {
		t.Fatalf("f16 state into an f32 context: %v", err)
	}
	if err := f.Decode([]int32{1}); err != nil {
		t.Fatal(err)
	}
	if s, err = f.StateSave(); err != nil {
		t.Fatal(err)
	}
	h.Clear()
	if err := h.StateLoad(s); err != nil {
		t.Fatalf("f32 state into an f16 context: %v", err)
	}
	if !reflect.DeepEqual(h.Tokens(), f.Tokens()) {
		t.Fatalf("tokens %v, want %v", h.Tokens(), f.Tokens())
	}
}

func TestKVTypeQ8_0StatesLoadAcrossTypes(t *testing.T) {
	// a q8_0 context saves f32 rows (dequantized exactly) and loads states of any type
	m := loadDemo(t)
	ctx := func(kv vwn.KVType) *vwn.Context { return kvContext(t, m, kv) }
	q, f, h := ctx(vwn.KVTypeQ8_0), ctx(vwn.KVTypeF32), ctx(vwn.KVTypeF16)
	ids, _ := m.Tokenize("state across types", true, false)
	if err := q.Decode(ids); err != nil {
		t.Fatal(err)
	}
	saved, err := q.StateSave()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.StateLoad(saved); err != nil {
		t.Fatalf("q8_0 state into an f32 context: %v", err)
	}
	// the f32 context holds exactly the dequantized rows: it saves the same state
	if again, err := f.StateSave(); err != nil || !bytes.Equal(again, saved) {
		t.Fatalf("the f32 context saves another state (%v)", err)
	}
	if err := f.Decode([]int32{1}); err != nil {
		t.Fatal(err)
	}
	s, err := f.StateSave()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.StateLoad(s); err != nil {
		t.Fatalf("f32 state into an f16 context: %v", err)
	}
	if err := h.Decode([]int32{2}); err != nil {
		t.Fatal(err)
	}
	if s, err = h.StateSave(); err != nil {
		t.Fatal(err)
	}
	q.Clear()
	if err := q.StateLoad(s); err != nil {
		t.Fatalf("f16 state into a q8_0 context: %v", err)
	}
	if !reflect.DeepEqual(q.Tokens(), h.Tokens()) {
		t.Fatalf("tokens %v, want %v", q.Tokens(), h.Tokens())
	}
	if err := q.Decode([]int32{3}); err != nil {
		t.Fatal(err)
	}
	l, err := q.Logits(-1)
	if err != nil {
		t.Fatal(err)
	}
	for i, x := range l {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			t.Fatalf("logit %d is %v", i, x)
		}
	}
}

type result struct {
	text   string
	logits []float32
}

func work(m *vwn.Model, prompt string) (result, error) {
	p := vwn.DefaultContextParams()
	p.NCtx, p.NThreads = 256, 1
	c, err := m.NewContext(&p)
	if err != nil {
		return result{}, err
	}
	defer c.Close()
	ids, err := m.Tokenize(prompt, true, false)
	if err != nil {
		return result{}, err
	}
	if err := c.Decode(ids); err != nil {
		return result{}, err
	}
	logits, err := c.Logits(-1)
	if err != nil {
		return result{}, err
	}
	c.Clear()
	o := vwn.DefaultGenerateOptions()
	o.NPredict = 16
	var out strings.Builder
	if _, err := c.Generate(prompt, &o, &out); err != nil {
		return result{}, err
	}
	return result{out.String(), logits}, nil
}

func TestOneModelFourGoroutines(t *testing.T) {
	m := load(t)
	prompts := []string{"The first prompt", "Second: 12345", "third, lower case", "4th / fourth!"}
	alone := make([]result, len(prompts))
	for i, p := range prompts {
		r, err := work(m, p)
		if err != nil {
			t.Fatal(err)
		}
		alone[i] = r
	}
	var wg sync.WaitGroup
	errs := make(chan error, 3*len(prompts))
	for i, p := range prompts {
		wg.Add(1)
		go func(i int, p string) {
			defer wg.Done()
			for k := 0; k < 3; k++ {
				r, err := work(m, p)
				if err == nil && !reflect.DeepEqual(r, alone[i]) {
					err = fmt.Errorf("goroutine %d run %d differs from the single-goroutine result", i, k)
				}
				if err != nil {
					errs <- err
				}
			}
		}(i, p)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

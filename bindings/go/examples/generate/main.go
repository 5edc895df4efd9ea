// Command generate loads a model and streams a greedy (or sampled) continuation of a prompt to
// stdout through vwn.Context.Generate; timing goes to stderr, like `vwn run`.
//
//	go run ./examples/generate -m MODEL.gguf -p "Once upon a time" [-n 64] [-temp 0.8] [-seed 1]
//	    [-spec K|-1] [-t THREADS] [-repeat R]
//
// With -repeat R the generation runs R times (the context cleared in between) and the mean speed
// is reported: the numbers the README's overhead measurement uses.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"time"

	vwn "github.com/libvwn/vwn-go"
)

func main() {
	model := flag.String("m", "", "model file (GGUF)")
	prompt := flag.String("p", "Once upon a time", "prompt")
	n := flag.Int("n", 64, "tokens to generate")
	temp := flag.Float64("temp", 0, "temperature (0: greedy)")
	seed := flag.Uint64("seed", 0, "sampling seed")
	spec := flag.Int("spec", 0, "speculative decoding depth (0 off, -1 adaptive)")
	threads := flag.Int("t", 0, "compute threads (0: the library's default)")
	repeat := flag.Int("repeat", 1, "run the generation this many times and report the mean speed")
	flag.Parse()
	if *model == "" {
		fmt.Fprintln(os.Stderr, "usage: generate -m MODEL.gguf [-p PROMPT] [-n N] [-temp T] [-seed S] [-spec K] [-t N] [-repeat R]")
		os.Exit(2)
	}
	if err := run(*model, *prompt, *n, float32(*temp), *seed, *spec, *threads, *repeat); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(path, prompt string, n int, temp float32, seed uint64, spec, threads, repeat int) error {
	m, err := vwn.Load(path)
	if err != nil {
		return err
	}
	defer m.Close()
	info := m.Info()
	fmt.Fprintf(os.Stderr, "libvwn %s: V=%d D=%d L=%d GHC m=%d n=%d mtp=%d\n", vwn.Version(),
		info.NVocab, info.NEmbd, info.NLayer, info.GHCM, info.GHCN, info.MTPDepth)

	cp := vwn.DefaultContextParams()
	cp.NThreads = threads
	cp.MTP = spec != 0
	ctx, err := m.NewContext(&cp)
	if err != nil {
		return err
	}
	defer ctx.Close()
	sp := vwn.DefaultSamplerParams()
	sp.Temperature, sp.Seed = temp, seed
	sampler, err := vwn.NewSampler(sp)
	if err != nil {
		return err
	}
	defer sampler.Close()

	opts := vwn.DefaultGenerateOptions()
	opts.NPredict, opts.SpecDepth, opts.Sampler = n, spec, sampler
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	var tokens int
	var libMicros float64
	var wall time.Duration
	for r := 0; r < repeat; r++ {
		if err := ctx.Clear(); err != nil {
			return err
		}
		sampler.Reset()
		out.WriteString(prompt)
		start := time.Now()
		st, err := ctx.Generate(prompt, &opts, flushWriter{out})
		wall += time.Since(start)
		if err != nil {
			return err
		}
		out.WriteString("\n")
		tokens += st.NGenerated
		libMicros += st.GenerateMicros
		if r == 0 {
			fmt.Fprintf(os.Stderr, "prompt: %d tokens in %.2f ms; stopped by %d\n", st.NPrompt, st.PromptMicros/1e3, st.StopReason)
			if spec != 0 {
				fmt.Fprintf(os.Stderr, "speculative: %d drafted, %d accepted in %d verify steps\n", st.NDrafted, st.NAccepted, st.NVerify)
			}
		}
	}
	fmt.Fprintf(os.Stderr, "generated: %d tokens in %.2f ms = %.2f tok/s (library time, %d run(s)); %.2f tok/s wall time around Generate\n",
		tokens, libMicros/1e3, float64(tokens)*1e6/libMicros, repeat, float64(tokens)/wall.Seconds())
	return nil
}

// flushWriter flushes after every piece, like `vwn run`.
type flushWriter struct{ w *bufio.Writer }

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err == nil {
		err = f.w.Flush()
	}
	return n, err
}

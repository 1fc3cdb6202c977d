package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/setgate/setgate/internal/rusage"
)

// Usage is the process's consumption at one moment.
type Usage struct {
	// CPU is user + system time since the process started.
	CPU time.Duration
	// PeakRSS is the highest resident set size since the start, or since
	// the last successful [ResetPeakRSS] (Linux); 0 when unknown.
	PeakRSS int64
	// RSS is the current resident set size; 0 when unknown.
	RSS int64
}

// ReadUsage returns the process's CPU time and memory now.
func ReadUsage() Usage {
	u := Usage{CPU: rusage.CPU(), PeakRSS: rusage.MaxRSS()}
	if st, err := os.ReadFile("/proc/self/status"); err == nil {
		if v, ok := statusKB(st, "VmHWM:"); ok {
			u.PeakRSS = v
		}
		if v, ok := statusKB(st, "VmRSS:"); ok {
			u.RSS = v
		}
	}
	return u
}

// Memory is the process's live Go heap and resident set, read after a
// garbage collection that returned free memory to the OS.
type Memory struct {
	// Heap is the live Go heap (runtime.MemStats.HeapAlloc).
	Heap int64
	// RSS is the resident set size; 0 when unknown.
	RSS int64
}

// ReadMemory collects garbage, returns free pages to the OS and reads
// the process's memory.
func ReadMemory() Memory {
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return Memory{Heap: int64(ms.HeapAlloc), RSS: ReadUsage().RSS}
}

// ResetPeakRSS makes the peak resident set size start again from the
// current one (Linux ≥ 4.0, /proc/self/clear_refs). On failure PeakRSS
// keeps counting from the start of the process.
func ResetPeakRSS() error {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return fmt.Errorf("bench: reset peak RSS: %w", err)
	}
	return nil
}

// statusKB reads a "Key:   123 kB" line of /proc/self/status, in bytes.
func statusKB(status []byte, key string) (int64, bool) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), key)
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return 0, false
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		return kb << 10, err == nil
	}
	return 0, false
}

// MachineCPU is the CPU time of the whole machine, from /proc/stat
// (Linux), in clock ticks.
type MachineCPU struct {
	Busy, Total uint64
	// CPUs is the number of CPUs counted.
	CPUs int
}

// ReadMachineCPU returns the machine's CPU counters now, or false where
// /proc/stat is not available.
func ReadMachineCPU() (MachineCPU, bool) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return MachineCPU{}, false
	}
	var m MachineCPU
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) > 0 && f[0] == "cpu":
			for i, v := range f[1:] {
				n, err := strconv.ParseUint(v, 10, 64)
				if err != nil {
					return MachineCPU{}, false
				}
				if i >= 8 {
					break // guest time is already counted in user
				}
				m.Total += n
				if i != 3 && i != 4 { // not idle, not iowait; steal is busy for us
					m.Busy += n
				}
			}
		case len(f) > 0 && strings.HasPrefix(f[0], "cpu"):
			m.CPUs++
		}
	}
	return m, m.Total > 0 && m.CPUs > 0
}

// BusyCores is how many CPUs the whole machine kept busy on average
// between m and a later reading.
func (m MachineCPU) BusyCores(later MachineCPU) float64 {
	if later.Total <= m.Total {
		return 0
	}
	return float64(later.Busy-m.Busy) / float64(later.Total-m.Total) * float64(later.CPUs)
}

// CPUWatch measures the CPU used by the whole machine and by this process
// over one measurement, to tell how much other programs competed with it.
type CPUWatch struct {
	machine MachineCPU
	known   bool
	self    time.Duration
	start   time.Time
}

// StartCPUWatch starts a watch.
func StartCPUWatch() CPUWatch {
	m, ok := ReadMachineCPU()
	return CPUWatch{machine: m, known: ok, self: rusage.CPU(), start: time.Now()}
}

// Others returns the CPUs kept busy on average since the start by other
// processes (0 when the machine's counters are unknown) and the wall time.
func (w CPUWatch) Others() (cores float64, elapsed time.Duration) {
	elapsed = time.Since(w.start)
	m, ok := ReadMachineCPU()
	if !w.known || !ok || elapsed <= 0 {
		return 0, elapsed
	}
	self := (rusage.CPU() - w.self).Seconds() / elapsed.Seconds()
	return max(w.machine.BusyCores(m)-self, 0), elapsed
}

// LoadAverage returns the 1, 5 and 15 minute load averages (Linux), or
// nil.
func LoadAverage() []float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return nil
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return nil
	}
	out := make([]float64, 3)
	for i := range out {
		if out[i], err = strconv.ParseFloat(f[i], 64); err != nil {
			return nil
		}
	}
	return out
}

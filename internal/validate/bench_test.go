package validate

import (
	"net/http"
	"net/url"
	"os"
	"testing"
)

// telemetry1KB is a realistic vehicle telemetry body of about 1 KB.
const telemetry1KB = `{"timestamp":"2024-05-01T12:34:56.789Z","odometer":123456.7,
"location":{"lat":48.137154,"lon":11.576124,"heading":271},
"battery":{"soc":76.5,"temperature":31.2,"cells":[3.71,3.72,3.70,3.71,3.73,3.72,3.71,3.70,3.72,3.71,3.72,3.73,3.71,3.70,3.72,3.71,3.69,3.70,3.71,3.72,3.73,3.71,3.70,3.72,3.71,3.72,3.73,3.71,3.70,3.72,3.71,3.70,3.72,3.71,3.72,3.73,3.71,3.70,3.72,3.71,3.69,3.70,3.71,3.72,3.73,3.71,3.70,3.72,3.71,3.72,3.73,3.71,3.70,3.72,3.71,3.70,3.72,3.71,3.72,3.73,3.71,3.70,3.72,3.71,3.69,3.70,3.71,3.72,3.73,3.71,3.70,3.72,3.71,3.72,3.73,3.71,3.70,3.72,3.71,3.70,3.71,3.69,3.72,3.70,3.71,3.72,3.73,3.71,3.70,3.72,3.71,3.70,3.72,3.71,3.72,3.73,3.71,3.70,3.72,3.71,3.69,3.70,3.71,3.72,3.73,3.71,3.70,3.72,3.71,3.72,3.73,3.71,3.70,3.72,3.71,3.70,3.72,3.71]},
"tires":[{"position":"FL","pressure":240},{"position":"FR","pressure":241.5},{"position":"RL","pressure":238},{"position":"RR","pressure":239.25},{"position":"RL","pressure":310},{"position":"RR","pressure":312.5}],
"driver":"Jane Roe"}`

func benchInput() *Input {
	return &Input{
		PathParams:  map[string]string{"vin": "WDB1234561A123456"},
		Query:       url.Values{"limit": {"50"}},
		Header:      http.Header{"X-Trace-Id": {"0123456789abcdef"}, "Content-Type": {"application/json"}},
		ContentType: "application/json; charset=utf-8",
		Body:        []byte(telemetry1KB),
	}
}

func mustOpenAPI(tb testing.TB, file string) *Set {
	tb.Helper()
	b, err := os.ReadFile("testdata/" + file)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := CompileOpenAPI(b)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func mustAsyncAPI(tb testing.TB, file string) *Set {
	tb.Helper()
	b, err := os.ReadFile("testdata/" + file)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := CompileAsyncAPI(b)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// BenchmarkValidate1KB measures the per-request hot path: three parameters
// and a ~1 KB JSON body with nested objects and arrays.
func BenchmarkValidate1KB(b *testing.B) {
	op := mustOpenAPI(b, "openapi30.yaml").Operation("POST", "/vehicles/{vin}/telemetry")
	in := benchInput()
	if err := op.Validate(in); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(in.Body)))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := op.Validate(in); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkValidatePayload(b *testing.B) {
	m := mustAsyncAPI(b, "asyncapi26.yaml").Channel("fleet/{deviceId}/telemetry")
	payload := []byte(`{"deviceId":"truck-42","ts":1714566896,"readings":[{"sensor":"coolant","value":88.5,"unit":"C"},{"sensor":"pack","value":398.2,"unit":"V"},{"sensor":"tire-fl","value":240,"unit":"kPa"}]}`)
	if err := m.ValidatePayload(payload); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		if err := m.ValidatePayload(payload); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidate1KBSerial is the single-goroutine latency of the same
// request (RunParallel above reports throughput across all CPUs).
func BenchmarkValidate1KBSerial(b *testing.B) {
	op := mustOpenAPI(b, "openapi30.yaml").Operation("POST", "/vehicles/{vin}/telemetry")
	in := benchInput()
	b.SetBytes(int64(len(in.Body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := op.Validate(in); err != nil {
			b.Fatal(err)
		}
	}
}

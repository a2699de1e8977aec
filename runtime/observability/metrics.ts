// Prometheus metrics backed by plain counters. Hot paths bump numbers they own; these helpers read
// them only when /metrics is scraped (prom-client collect() callbacks), so a frame costs no
// prom-client call. One Registry per component instance (several routers may live in one test
// process), never the global default registry.
import { Counter, collectDefaultMetrics, Gauge, Registry } from "prom-client";

/** Label values -> value, or a single value for an unlabelled metric. */
export type MetricSample = number | Iterable<readonly [Readonly<Record<string, string>>, number]>;

export interface MetricDef {
  readonly name: string;
  readonly help: string;
  readonly labelNames?: readonly string[];
  /** Called at scrape time. */
  readonly read: () => MetricSample;
}

/** A registry with the process/runtime metrics (CPU, memory, event loop lag) already in it. */
export function createMetricsRegistry(defaultMetrics = true): Registry {
  const registry = new Registry();
  if (defaultMetrics) collectDefaultMetrics({ register: registry });
  return registry;
}

function apply(metric: Counter | Gauge, sample: MetricSample): void {
  if (typeof sample === "number") {
    if (metric instanceof Counter) metric.inc(sample);
    else metric.set(sample);
    return;
  }
  for (const [labels, value] of sample) {
    if (metric instanceof Counter) metric.inc(labels, value);
    else metric.set(labels, value);
  }
}

/** Options of a metric that refreshes itself from `def.read()` each time it is collected. */
function fromSource(registry: Registry, def: MetricDef) {
  return {
    name: def.name,
    help: def.help,
    labelNames: [...(def.labelNames ?? [])],
    registers: [registry],
    collect(this: Counter | Gauge) {
      this.reset();
      apply(this, def.read());
    },
  };
}

/** A counter whose value is read from `def.read()` at scrape time (monotonic sources only). */
export function counterFrom(registry: Registry, def: MetricDef): Counter {
  return new Counter(fromSource(registry, def));
}

/** A gauge whose value is read from `def.read()` at scrape time. */
export function gaugeFrom(registry: Registry, def: MetricDef): Gauge {
  return new Gauge(fromSource(registry, def));
}

/** Turns a `{ key: value }` record into samples labelled `{ [label]: key }`. */
export function byLabel(label: string, values: Readonly<Record<string, number>>): MetricSample {
  return Object.entries(values).map(([k, v]) => [{ [label]: k }, v] as const);
}

/** One labelled series of a histogram kept outside prom-client: cumulative buckets by `le`. */
export interface HistogramSeries {
  readonly labels: Readonly<Record<string, string>>;
  /** Cumulative counts, `le` in increasing order, "+Inf" last. */
  readonly buckets: readonly { readonly le: string; readonly value: number }[];
  readonly sum: number;
  readonly count: number;
}

export interface HistogramDef {
  readonly name: string;
  readonly help: string;
  /** Called at scrape time. */
  readonly read: () => Iterable<HistogramSeries>;
}

/**
 * A Prometheus histogram whose buckets are counted elsewhere (plain integers on a hot path) and
 * read at scrape time: registered as a metric object of its own, since prom-client's Histogram
 * can only be fed one observation at a time. Written as `_bucket{le}`, `_sum` and `_count`.
 */
export function histogramFrom(registry: Registry, def: HistogramDef): void {
  const metric = {
    name: def.name,
    help: def.help,
    type: "histogram",
    aggregator: "sum",
    get() {
      const values: { metricName: string; labels: Record<string, string | number>; value: number }[] = [];
      for (const s of def.read()) {
        for (const b of s.buckets) {
          values.push({
            metricName: `${def.name}_bucket`,
            labels: { ...s.labels, le: b.le },
            value: b.value,
          });
        }
        values.push({ metricName: `${def.name}_sum`, labels: { ...s.labels }, value: s.sum });
        values.push({ metricName: `${def.name}_count`, labels: { ...s.labels }, value: s.count });
      }
      return { name: def.name, help: def.help, type: "histogram", aggregator: "sum", values };
    },
    reset() {
      // the counts belong to their owner
    },
  };
  registry.registerMetric(metric as unknown as Parameters<Registry["registerMetric"]>[0]);
}

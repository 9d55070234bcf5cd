// Specs from the catalog: the form's defaults, and a full spec from a partial one (a preset, a cloned run).
export const defaultsOf = params => Object.fromEntries(params.map(p => [p.name, p.default]));

// The catalog indexed the way the form looks things up.
export function catalogIndex(catalog) {
  return {
    catalog,
    models: Object.fromEntries(catalog.models.map(m => [m.name, m])),
    methods: Object.fromEntries(catalog.methods.map(m => [m.kind, m])),
    schedules: Object.fromEntries(catalog.schedules.map(s => [s.kind, s])),
    presets: catalog.presets || [],
  };
}

// The first preset's experiment (or the catalog's first choices) with every default filled in.
export function defaultSpec({ catalog, methods, schedules, presets }) {
  const preset = presets[0]?.spec;
  const method = preset?.method?.kind || catalog.methods[0].kind;
  const schedule = preset?.schedule?.kind || catalog.schedules[0].kind;
  return {
    name: 'experiment', model: preset?.model || catalog.models[0].name, dataset: preset?.dataset || catalog.datasets[0].name,
    tags: [], seed: 0, device: 'auto',
    method: { kind: method, ...defaultsOf(methods[method].params) },
    schedule: { kind: schedule, ...defaultsOf(schedules[schedule].params) },
    train: defaultsOf(catalog.train.params), measure: defaultsOf(catalog.measure.params),
  };
}

// A full spec from a partial one: defaults wherever it says nothing.
export function completeSpec(index, partial) {
  const base = defaultSpec(index);
  const method = partial.method?.kind || base.method.kind;
  const schedule = partial.schedule?.kind || base.schedule.kind;
  return {
    ...base, ...partial,
    method: { kind: method, ...defaultsOf(index.methods[method].params), ...(partial.method || {}) },
    schedule: { kind: schedule, ...defaultsOf(index.schedules[schedule].params), ...(partial.schedule || {}) },
    train: { ...base.train, ...(partial.train || {}) },
    measure: { ...base.measure, ...(partial.measure || {}) },
  };
}

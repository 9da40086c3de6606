// Type-checks the Grafana dashboard against Grafana's own published typings (@grafana/schema and
// @grafana/data, one pinned release of each supported Grafana line, see package.json): the
// dashboard, each panel's options and custom field config against that panel type's generated
// types, transformation ids, reducer ids, field matcher ids, override property ids and values,
// value mappings, threshold modes, variables and links. For each Grafana line it writes a
// TypeScript file that assigns the dashboard's parts, as object literals, to those types (so a
// misspelled property is an excess property and fails) and runs `tsc --strict --noEmit`.
//
// It also proves that the check can fail: each mutation below breaks a copy of the dashboard in
// one place, and tsc must reject that copy with an error naming what was broken.
//
// Usage: node dashboard_schema_test.mjs DASHBOARD_JSON WORK_DIR
// WORK_DIR (created) receives the generated files; it must lie below the directory that holds
// this script's node_modules (`npm ci` beside package.json), where the imports resolve.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const TSC = path.join(HERE, 'node_modules', 'typescript', 'bin', 'tsc');

// The Grafana lines the dashboard must load in, named as package.json's aliases name them.
const GRAFANA_LINES = ['10.4', '11.0', '11.6'];

// Each panel type of the dashboard and the module of @grafana/schema that holds its generated
// options (`Options`) and custom field config (`FieldConfig`). The alert list's options are not
// published in @grafana/schema (they live in Grafana's app code), so only its panel fields are
// checked.
const PANEL_TYPES = {
  timeseries: { module: 'timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen', custom: true },
  table: { module: 'table/panelcfg/x/TablePanelCfg_types.gen', custom: true },
  stat: { module: 'stat/panelcfg/x/StatPanelCfg_types.gen', custom: false },
  bargauge: { module: 'bargauge/panelcfg/x/BarGaugePanelCfg_types.gen', custom: false },
  'state-timeline': {
    module: 'statetimeline/panelcfg/x/StateTimelinePanelCfg_types.gen', custom: true },
  alertlist: null,
};

// Mistakes the check must catch: a name, how to break a copy of the dashboard, and a piece of
// text tsc's error must contain.
const MUTATIONS = [
  { name: 'misspelled_option', expect: '"showLegnd"',
    apply: (d) => rename(panel(d, 'Loss').options.legend, 'showLegend', 'showLegnd') },
  { name: 'unknown_gradient_mode', expect: '"sideways"',
    apply: (d) => { panel(d, 'Loss').fieldConfig.defaults.custom.gradientMode = 'sideways'; } },
  { name: 'unknown_reducer', expect: '"lastNotNul"',
    apply: (d) => { panel(d, 'Epoch').options.reduceOptions.calcs = ['lastNotNul']; } },
  { name: 'unknown_legend_reducer', expect: '"minimum"',
    apply: (d) => { panel(d, 'Loss').options.legend.calcs = ['minimum']; } },
  { name: 'wrong_type', expect: "Type 'string' is not assignable to type 'number'",
    apply: (d) => { panel(d, 'Progress').gridPos.w = '8'; } },
  { name: 'unknown_transformation', expect: '"organise"',
    apply: (d) => { panel(d, 'Jobs').transformations[1].id = 'organise'; } },
  { name: 'unknown_matcher', expect: '"byNme"',
    apply: (d) => { panel(d, 'Jobs').fieldConfig.overrides[0].matcher.id = 'byNme'; } },
  { name: 'unknown_override_property', expect: '"custom.widht"',
    apply: (d) => {
      panel(d, 'Jobs').fieldConfig.overrides[0].properties[0].id = 'custom.widht';
    } },
  { name: 'wrong_override_value', expect: "Type 'string' is not assignable to type 'number'",
    apply: (d) => { panel(d, 'Jobs').fieldConfig.overrides[0].properties[0].value = '60'; } },
  { name: 'unknown_mapping_type', expect: '"values"',
    apply: (d) => { panel(d, 'State').fieldConfig.defaults.mappings[0].type = 'values'; } },
  { name: 'unknown_threshold_mode', expect: '"absolut"',
    apply: (d) => { panel(d, 'Progress').fieldConfig.defaults.thresholds.mode = 'absolut'; } },
  { name: 'misspelled_custom_field', expect: '"lineWidht"',
    apply: (d) => rename(panel(d, 'Loss').fieldConfig.defaults.custom, 'lineWidth', 'lineWidht') },
  { name: 'misspelled_annotation_field', expect: '"titelFormat"',
    apply: (d) => rename(d.annotations.list[0], 'titleFormat', 'titelFormat') },
  { name: 'unknown_variable_type', expect: '"querry"',
    apply: (d) => { d.templating.list[0].type = 'querry'; } },
];

function allPanels(dashboard) {
  return dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

function panel(dashboard, title) {
  const found = allPanels(dashboard).find((p) => p.title === title);
  if (!found) throw new Error(`no panel titled ${title}`);
  return found;
}

function rename(object, from, to) {
  if (!(from in object)) throw new Error(`no ${from} to rename`);
  object[to] = object[from];
  delete object[from];
}

// The shared declarations of one Grafana line's check: Grafana's types with their enums opened
// to the strings a dashboard's JSON holds, and a type per panel type.
function prelude(line) {
  const schema = '@grafana/schema';
  const data = '@grafana/data';
  const imports = Object.entries(PANEL_TYPES).filter(([, spec]) => spec).map(([type, spec]) => {
    const alias = typeAlias(type);
    const renamed = spec.custom ? `Options as ${alias}Options, FieldConfig as ${alias}Custom`
                                : `Options as ${alias}Options`;
    return `import type { ${renamed} } from '${schema}/dist/esm/raw/composable/${spec.module}';`;
  });
  return `// Generated by dashboard_schema_test.mjs for Grafana ${line}; do not edit.
import type { Dashboard, FieldConfig, Panel, RowPanel, VariableModel, AnnotationQuery,
              DataTransformerConfig } from '${schema}';
import type { DataTransformerID, FieldConfigProperty, FieldMatcherID, QueryVariableModel,
              ReducerID } from '${data}';
${imports.join('\n')}

// A value as JSON holds it: string enums become the union of their strings, every \`calcs\` list
// (reduce options, legends) and \`reducer\` list (table footer) holds reducer ids, objects stay
// closed (a misspelled key is an excess property).
type Json<T> =
  0 extends (1 & T) ? T :
  unknown extends T ? T :
  T extends string ? \`\${T}\` :
  T extends number | boolean | null | undefined ? T :
  T extends ReadonlyArray<infer U> ? Array<Json<U>> :
  T extends object ? { [K in keyof T]: K extends 'calcs' | 'reducer' ? Reducer[] : Json<T[K]> } :
  T;
type Reducer = \`\${ReducerID}\`;

// Panel options and custom field config as a dashboard may hold them: as Json, but every key
// optional at every depth, since Grafana fills in what a panel leaves out from the panel plugin's
// defaults (a field that a later Grafana adds with a default is required in its generated types,
// and an earlier Grafana rejects it as unknown).
type Settings<T> =
  0 extends (1 & T) ? T :
  unknown extends T ? T :
  T extends string ? \`\${T}\` :
  T extends number | boolean | null | undefined ? T :
  T extends ReadonlyArray<infer U> ? Array<Settings<U>> :
  T extends object ?
    { [K in keyof T]?: K extends 'calcs' | 'reducer' ? Reducer[] : Settings<T[K]> } :
  T;
type StandardFieldConfig = Json<Omit<FieldConfig, 'custom'>>;

// An override property: a key of the schema's FieldConfig, another standard property Grafana's
// panels offer (FieldConfigProperty) or custom.<key of the panel's custom field config>, with a
// value of that key's type where the schema gives one.
type OverrideProperty<Custom> =
  | { [K in keyof StandardFieldConfig]-?: { id: K; value?: StandardFieldConfig[K] } }[
      keyof StandardFieldConfig]
  | { id: Exclude<\`\${FieldConfigProperty}\`, keyof StandardFieldConfig>; value?: unknown }
  | { [K in keyof Custom & string]-?: { id: \`custom.\${K}\`; value?: Custom[K] } }[
      keyof Custom & string];

type Transformation = Omit<Json<DataTransformerConfig>, 'id'> & { id: \`\${DataTransformerID}\` };

type PanelOf<Options, Custom> =
  Omit<Json<Panel>, 'options' | 'fieldConfig' | 'transformations'> & {
    options?: Options;
    transformations?: Transformation[];
    fieldConfig?: {
      defaults: StandardFieldConfig & { custom?: Custom };
      overrides: Array<{
        matcher: { id: \`\${FieldMatcherID}\`; options?: unknown };
        properties: Array<OverrideProperty<Custom>>;
      }>;
    };
  };
type NoCustom = Record<never, never>;
${Object.entries(PANEL_TYPES).map(([type, spec]) => {
    const alias = typeAlias(type);
    if (!spec) return `type ${alias}Panel = PanelOf<Record<string, unknown>, NoCustom>;`;
    const custom = spec.custom ? `Settings<${alias}Custom>` : 'NoCustom';
    return `type ${alias}Panel = PanelOf<Settings<${alias}Options>, ${custom}>;`;
  }).join('\n')}
type Row = Omit<Json<RowPanel>, 'panels'> & { panels: unknown[] };

// The Prometheus data source's annotation fields, as Grafana's Prometheus annotation support
// reads them (packages/grafana-prometheus/src/annotations.ts: prepareAnnotation moves expr and
// step into target; processEvents reads the rest). @grafana/schema's AnnotationQuery leaves them
// out, as they belong to the data source.
interface PrometheusAnnotationFields {
  expr?: string;
  step?: string;
  titleFormat?: string;
  textFormat?: string;
  tagKeys?: string;
  useValueForTime?: boolean;
}
type Annotation = Json<AnnotationQuery> & PrometheusAnnotationFields;

// A variable: the schema's VariableModel, and the query text a query variable's editor keeps
// (definition), which only @grafana/data's QueryVariableModel names.
type Variable = Json<VariableModel> & Partial<Pick<QueryVariableModel, 'definition'>>;

type DashboardTop = Omit<Json<Dashboard>, 'panels' | 'annotations' | 'templating'>;
`;
}

function typeAlias(panelType) {
  return panelType.split('-').map((w) => w[0].toUpperCase() + w.slice(1)).join('');
}

// One Grafana line's check of one dashboard: every part as an object literal `satisfies` its
// type, then the whole assigned to Grafana's Dashboard type (enums opened).
function checkSource(line, dashboard) {
  const literal = (value) => JSON.stringify(value, null, 2);
  const lines = [prelude(line)];
  const ref = (p) => `panel_${p.id}`;
  for (const p of allPanels(dashboard)) {
    if (p.type === 'row') continue;
    if (!(p.type in PANEL_TYPES)) throw new Error(`panel ${p.id}: no type check for ${p.type}`);
    lines.push(`const ${ref(p)} = ${literal(p)} satisfies ${typeAlias(p.type)}Panel;`);
  }
  for (const p of dashboard.panels.filter((p) => p.type === 'row')) {
    const { panels, ...row } = p;
    const body = literal(row).replace(/\n}$/, `,\n  "panels": [${panels.map(ref).join(', ')}]\n}`);
    lines.push(`const ${ref(p)} = ${body} satisfies Row;`);
  }
  dashboard.annotations.list.forEach((a, i) => {
    lines.push(`const annotation_${i} = ${literal(a)} satisfies Annotation;`);
  });
  dashboard.templating.list.forEach((v, i) => {
    lines.push(`const variable_${i} = ${literal(v)} satisfies Variable;`);
  });
  const { panels, annotations, templating, ...top } = dashboard;
  lines.push(`const top = ${literal(top)} satisfies DashboardTop;`);
  lines.push(`export const dashboard: Json<Dashboard> = {
  ...top,
  panels: [${panels.map(ref).join(', ')}],
  annotations: { list: [${annotations.list.map((_, i) => `annotation_${i}`).join(', ')}] },
  templating: { list: [${templating.list.map((_, i) => `variable_${i}`).join(', ')}] },
};
`);
  return lines.join('\n\n');
}

// tsc over `files` of `dir` for one Grafana line: @grafana/schema and @grafana/data, also where
// Grafana's own declarations import them, are that line's packages (package.json's aliases).
function runTsc(dir, line, files) {
  const modules = path.join(HERE, 'node_modules');
  const schema = path.join(modules, `grafana-schema-${line}`);
  const config = {
    compilerOptions: {
      strict: true, noEmit: true, skipLibCheck: true, target: 'es2022', module: 'esnext',
      moduleResolution: 'node10', types: [],
      paths: {
        '@grafana/schema': [path.join(schema, 'dist', 'esm', 'index')],
        '@grafana/schema/*': [path.join(schema, '*')],
        '@grafana/data': [path.join(modules, `grafana-data-${line}`)],
      },
    },
    files,
  };
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify(config, null, 2));
  try {
    execFileSync(process.execPath, [TSC, '--project', path.join(dir, 'tsconfig.json'),
                                     '--pretty', 'false'], { encoding: 'utf8' });
    return '';
  } catch (error) {
    if (error.status === undefined || error.status === null) throw error;
    return error.stdout + error.stderr;
  }
}

// tsc's diagnostics, by the file they are in (an error's continuation lines stay with it).
function errorsByFile(output) {
  const errors = {};
  let current = null;
  for (const line of output.split('\n')) {
    const match = line.match(/^(.*?\.ts)\(\d+,\d+\): error/);
    if (match) {
      current = path.basename(match[1]);
      errors[current] = (errors[current] ?? '') + line + '\n';
    } else if (current && line.trim()) {
      errors[current] += line + '\n';
    }
  }
  return errors;
}

function main() {
  const [dashboardPath, workDir] = process.argv.slice(2);
  if (!dashboardPath || !workDir) {
    console.error('usage: node dashboard_schema_test.mjs DASHBOARD_JSON WORK_DIR');
    process.exit(2);
  }
  const dashboard = JSON.parse(fs.readFileSync(dashboardPath, 'utf8'));
  let failures = 0;
  for (const line of GRAFANA_LINES) {
    const dir = path.join(path.resolve(workDir), `grafana-${line}`);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    const files = ['dashboard.ts'];
    fs.writeFileSync(path.join(dir, 'dashboard.ts'), checkSource(line, dashboard));
    for (const mutation of MUTATIONS) {
      const copy = structuredClone(dashboard);
      mutation.apply(copy);
      const file = `mutation_${mutation.name}.ts`;
      fs.writeFileSync(path.join(dir, file), checkSource(line, copy));
      files.push(file);
    }
    const output = runTsc(dir, line, files);
    const errors = errorsByFile(output);
    const unattributed = output.split('\n').filter((l) => l.startsWith('error')).join('\n');
    if (errors['dashboard.ts'] || unattributed) {
      failures++;
      console.log(`FAIL Grafana ${line}: the dashboard does not type-check:\n` +
                  `${errors['dashboard.ts'] ?? ''}${unattributed}`);
    } else {
      console.log(`ok   Grafana ${line}: the dashboard type-checks`);
    }
    for (const mutation of MUTATIONS) {
      const found = errors[`mutation_${mutation.name}.ts`] ?? '';
      if (found.includes(mutation.expect)) {
        console.log(`ok   Grafana ${line}: ${mutation.name} is rejected`);
      } else {
        failures++;
        console.log(`FAIL Grafana ${line}: ${mutation.name} should fail naming ` +
                    `${mutation.expect}; tsc said:\n${found || '(nothing)'}`);
      }
    }
  }
  if (failures) {
    console.log(`${failures} failure(s); generated files in ${path.resolve(workDir)}`);
    process.exit(1);
  }
}

main();

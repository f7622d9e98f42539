-- SentryFuse Bench results store (SQLite). Contract between harness/ (writer) and
-- reports/ (reader). One transaction per finished cell: a cell row, its raw latency
-- samples and its replay events land together or not at all.
PRAGMA user_version = 2;  -- v2: trials (harness/trials.py), intervals, energy_model

CREATE TABLE IF NOT EXISTS runs (
  run_id            TEXT PRIMARY KEY,      -- uuid4 hex, one per `sentryfuse run` invocation
  profile_name      TEXT NOT NULL,
  profile_hash      TEXT NOT NULL,         -- sha256 of the normalised profile
  profile_json      TEXT NOT NULL,         -- the validated profile, as JSON
  started_at        TEXT NOT NULL,         -- ISO-8601 UTC
  finished_at       TEXT,
  git_commit        TEXT,
  packages_json     TEXT NOT NULL,         -- {"torch": "2.13.0", ...}
  fingerprint_json  TEXT NOT NULL,         -- {target_name: fingerprint dict}
  fingerprint_hash  TEXT NOT NULL          -- hash of the stable parts (device model, versions)
);

CREATE TABLE IF NOT EXISTS cells (
  cell_key          TEXT PRIMARY KEY,      -- sha256 of definition_json
  run_id            TEXT NOT NULL REFERENCES runs(run_id),
  kind              TEXT NOT NULL,         -- 'static' | 'replay'
  definition_json   TEXT NOT NULL,         -- every field below that defines the cell
  dataset           TEXT NOT NULL,
  backbone          TEXT NOT NULL,
  attention         TEXT NOT NULL,         -- 'dense' | 'sentryattend'
  method            TEXT NOT NULL,         -- 'dense','random','magnitude','taylor','fisher','taylor-calib','sentrygate', or '<m>+ft'
  sparsity          REAL NOT NULL,         -- fraction of heads+FFN channels removed (0 for dense)
  condition         TEXT NOT NULL,         -- 'all' | 'drop:acc' | 'drop:acc+gyro' | 'random:0.3' | 'burst:...'
  target            TEXT NOT NULL,         -- 'cpu' | 'cuda' | 'jetson'
  runtime           TEXT NOT NULL,         -- 'torch','torch-compiled','onnxruntime','tensorrt'
  power_mode        TEXT NOT NULL,
  seed              INTEGER NOT NULL,
  status            TEXT NOT NULL,         -- 'ok' | 'failed'
  error             TEXT,                  -- one line, when failed
  accuracy          REAL,                  -- top-1 on the test split under `condition`
  n_eval            INTEGER,
  params            INTEGER,               -- parameters of the (pruned) deployed model
  gflops            REAL,                  -- per sample, torch.utils.flop_counter
  weights_mb        REAL,
  peak_memory_mb    REAL,                  -- peak process RSS during the measurement
  cuda_peak_mb      REAL,
  latency_ms_p50    REAL,                  -- static: median of the trial medians
  latency_ms_p90    REAL,
  latency_ms_p95    REAL,
  latency_ms_p99    REAL,                  -- static: median of the trial p99s (p90/p95 alike)
  latency_ms_mean   REAL,                  -- every sample of every trial
  latency_cv        REAL,                  -- every sample pooled (informational)
  latency_n         INTEGER,               -- samples over all trials
  stable            INTEGER,               -- 1 iff unstable_reason is NULL (static: trial spread and CPU share; replay: every segment's chunk spread and CPU share)
  energy_mj_per_inference REAL,            -- static: median over trials
  energy_source     TEXT,                  -- 'measured' | 'estimated' | NULL
  energy_sensor     TEXT,                  -- 'rapl','nvml-total-energy','ina3221-sysfs','cpu-time-estimate',...
  energy_rails_json TEXT,                  -- {"VDD_IN": mJ, ...} over the window
  prune_ms          REAL,                  -- time to derive the pruned variant (zero-shot re-prune)
  finetune_wall_s   REAL,                  -- fine-tuning baselines only
  finetune_energy_mj REAL,
  finetune_energy_source TEXT,
  extra_json        TEXT,                  -- anything else worth keeping (warnings, ...)
  trials            INTEGER,               -- v2: trials measured (rows in `trials`)
  latency_ms_p50_ci_lo REAL,               -- v2: order-statistic interval of the median of trial medians
  latency_ms_p50_ci_hi REAL,               --     (coverage in extra_json.ci_coverage; NULL with 1 trial)
  latency_trial_spread REAL,               -- v2: relative MAD of the trial medians
  energy_mj_ci_lo   REAL,                  -- v2: same interval over the trial energies
  energy_mj_ci_hi   REAL,
  energy_model      TEXT,                  -- v2: the power model of an estimate ('cpu-active-cores-v1: ...'), NULL if measured
  unstable_reason   TEXT,                  -- v2: NULL when stable, else one line
  accuracy_ci_lo    REAL,                  -- v2: Wilson 95% interval over the n_eval test samples (this seed)
  accuracy_ci_hi    REAL,
  started_at        TEXT NOT NULL,
  finished_at       TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS latency_samples (
  cell_key    TEXT NOT NULL REFERENCES cells(cell_key),
  idx         INTEGER NOT NULL,            -- global index in the cell (trial after trial)
  latency_ms  REAL NOT NULL,
  trial       INTEGER,                     -- v2: the trial it belongs to (NULL for replay cells)
  PRIMARY KEY (cell_key, idx)
);

-- v2: one row per timed window (trial) of a static cell; the unit of replication.
CREATE TABLE IF NOT EXISTS trials (
  cell_key        TEXT NOT NULL REFERENCES cells(cell_key),
  trial           INTEGER NOT NULL,        -- 0-based within the cell
  round           INTEGER NOT NULL,        -- interleaving round (all cells of a group run one trial per round)
  latency_ms_p50  REAL NOT NULL,
  latency_ms_p99  REAL NOT NULL,
  latency_ms_mean REAL NOT NULL,
  n               INTEGER NOT NULL,
  elapsed_s       REAL NOT NULL,           -- the window, edge to edge
  energy_mj_per_inference REAL,
  PRIMARY KEY (cell_key, trial)
);

-- Deployment replay: one row per segment of the timeline (a stretch with one power mode
-- and one set of present sensors).
CREATE TABLE IF NOT EXISTS replay_segments (
  cell_key        TEXT NOT NULL REFERENCES cells(cell_key),
  seq             INTEGER NOT NULL,
  t_start_s       REAL NOT NULL,         -- stream time at the segment start
  t_end_s         REAL NOT NULL,
  power_mode      TEXT NOT NULL,
  present_json    TEXT NOT NULL,         -- ["acc", "gyro"]
  sparsity        REAL NOT NULL,         -- budget the policy chose for this segment
  n_samples       INTEGER NOT NULL,
  accuracy        REAL,
  latency_ms_p50  REAL,
  latency_ms_p99  REAL,
  deadline_misses INTEGER NOT NULL,
  switch_ms       REAL,                  -- time to re-prune / switch at the segment start
  energy_mj       REAL,
  energy_source   TEXT,
  PRIMARY KEY (cell_key, seq)
);

"""One training run.

run.py          Run: results folder, env, trainers, tracking, the loop, final files; run() is mode=train
loop.py         the collect/update loop (CleanRL-short) and the Callback hooks it calls
callbacks.py    its side concerns: checkpoints, stop_at_reward, progress line, curriculum, on_summary hook
checkpoints.py  the run's files: RunPaths, atomic writes, checkpoints, training_status.json
summaries.py    the console line, stats.jsonl rows and tracker metrics of each summary; the progress line
setup.py        what every mode does first: seed, thread limits, the env and its parameters
lock.py         one writer per run folder: the flock on results/<run_id>/.mlx.lock
output.py       run output through the mlx logger: the console lines as they are, run_logs/mlx.log
banner.py       the start banner and each behaviour's hyperparameter banner
stops.py        how a run stops: SIGINT/SIGTERM/SIGHUP between two steps, which failures save first
"""

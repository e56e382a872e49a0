"""What `mode=` runs besides training: env + policy only, no trainer.

policy.py    the Policy protocol: torch (a checkpoint's actor and normaliser), ONNX, random, heuristic
episodes.py  episode bookkeeping: returns as agents report them, fair samples to evaluate and to record
evaluate.py  mode=evaluate: mean and spread of returns, run_logs/evaluation.json
watch.py     mode=watch: a GIF or MP4 of the policy playing
record.py    mode=record: .demo files of a policy or heuristic playing
"""

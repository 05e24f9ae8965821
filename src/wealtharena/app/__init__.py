"""What a user runs, composed from the layers below: prepare the data, train and report, evaluate a
checkpoint (one, or one per seed), tune, the learning study over seeds (and walk-forward).

`train.py` parses its arguments and calls into here. The application wires the layers that do not
know each other: it hands training a validation (`evaluation.validation`) and hands evaluation and the
desk a loaded policy (`training.inference.TrainedPolicy`).
"""

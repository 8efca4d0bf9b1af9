"""Runtime: where torch runs. Seeds, the default device and AMP (`devices`), torchrun processes
(`distributed`), and state-dict checkpoints saved atomically and loaded with weights_only=True
(`checkpoint`).

May import `toolkit`.
"""

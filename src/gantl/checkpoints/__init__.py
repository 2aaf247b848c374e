"""gantl.checkpoints"""

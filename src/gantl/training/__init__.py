"""gantl.training"""

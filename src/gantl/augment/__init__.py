"""gantl.augment"""

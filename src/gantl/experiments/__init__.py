"""gantl.experiments"""

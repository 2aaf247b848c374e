"""gantl.metrics"""

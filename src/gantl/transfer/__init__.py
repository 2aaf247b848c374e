"""gantl.transfer"""

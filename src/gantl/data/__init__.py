"""gantl.data"""

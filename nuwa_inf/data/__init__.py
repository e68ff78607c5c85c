"""nuwa_inf.data"""

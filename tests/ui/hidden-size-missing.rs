bp::network! {
    struct Net {
        input x: [28, 28];
        let l = lstm(x);
        let out = linear(last(l), 10);
        output out;
    }
}

fn main() {}
